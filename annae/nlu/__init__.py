"""Natural-language understanding: normalisation, features, classifier, calibration, evaluation."""
