"""Is a model name loadable? Answered at once, before an engine starts: a misspelt path or an unknown hub id is
an error naming it, not an engine traceback after a minute of retries."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from generators.models import EMBEDDED, ModelNotAvailableError, locate_chunks, manifest_matches, model_dir, \
    read_manifest


def check_model(name: str) -> None:
    """Raise :class:`ModelNotAvailableError` at once, saying what is wrong, unless ``name`` can be loaded: an
    embedded model whose weights are installed (or converted), a model directory (with ``config.json``), or a
    Hugging Face model id that is cached or that the hub knows. Without network, or with ``HF_HUB_OFFLINE``, an
    id that is not cached is refused at once, saying so."""
    if name in EMBEDDED:
        if not manifest_matches(read_manifest(model_dir(name)), EMBEDDED[name]):
            locate_chunks(EMBEDDED[name])
        return
    local = Path(name).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelNotAvailableError(f"{name} is not a model directory (it has no config.json)")
        return
    unknown = (f"no model directory or known model named {name!r} (a model is {', '.join(EMBEDDED)}, a local "
               "model directory or a Hugging Face model id)")
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelNotAvailableError(unknown) from None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or constants.ENDPOINT
    if hub_offline():
        raise ModelNotAvailableError(f"{unknown}; it is not in the Hugging Face cache and HF_HUB_OFFLINE is set")
    if not hub_reachable(host, endpoint.port or (80 if endpoint.scheme == "http" else 443)):
        raise ModelNotAvailableError(f"{unknown}; it is not in the Hugging Face cache and {host} cannot be reached "
                                     "(no network connection)")
    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:
        raise ModelNotAvailableError(f"{name} is a gated model on {host}: log in with an account that has access "
                                     "(hf auth login, or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise ModelNotAvailableError(f"{unknown}; {host} has no model {name!r} either") from None
    except Exception as exc:  # the hub client's transport errors (httpx or requests, by version), as they are
        raise ModelNotAvailableError(f"could not look up model {name!r} on {host}: {exc}") from None


def hub_offline() -> bool:
    """Whether the environment tells Hugging Face libraries to stay offline."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout_s: float = 3.0) -> bool:
    """One quick connection attempt, so a machine without network fails fast instead of retrying."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True
