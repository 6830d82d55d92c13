"""Knowledge base: entries, example questions, revisions, importers and exporters."""
