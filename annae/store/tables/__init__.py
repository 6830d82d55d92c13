"""Table definitions, one module per capability (see ``annae/store/models.py``)."""
