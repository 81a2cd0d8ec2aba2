"""KV cache and context sizing from the model config and the machine's memory."""
import pytest

from generators.sizing import GIB, bytes_per_token, from_environment, plan_cache

QWEN_05B = {"num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "hidden_size": 896,
            "max_position_embeddings": 32768}
BIG = {"num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "hidden_size": 8192,
       "max_position_embeddings": 131072}


def test_bytes_per_token_counts_keys_and_values_of_every_kv_head():
    assert bytes_per_token(QWEN_05B) == 2 * 24 * 2 * 64 * 2  # 12 KiB: head_dim = 896 / 14 = 64
    assert bytes_per_token(QWEN_05B, "float32") == 2 * bytes_per_token(QWEN_05B)
    assert bytes_per_token({**QWEN_05B, "head_dim": 128}) == 2 * 24 * 2 * 128 * 2


def test_cache_holds_several_full_contexts_when_memory_allows():
    plan = plan_cache(QWEN_05B, max_model_len=None, available=20 * GIB)
    assert plan.max_model_len == 32768
    assert plan.kv_cache_gib == 3  # ceil(12 KiB * 32768 * 8 / GiB)
    assert plan.kv_cache_gib * GIB >= 8 * 32768 * plan.bytes_per_token


def test_cache_is_capped_by_memory_and_context_lowered_to_what_fits():
    plan = plan_cache(BIG, max_model_len=None, available=10 * GIB)
    assert plan.kv_cache_gib == 4  # 40% of 10 GiB
    assert plan.max_model_len == 4 * GIB // bytes_per_token(BIG) < 131072
    assert "lowered" in plan.reason


def test_explicit_size_and_context_are_kept():
    plan = plan_cache(QWEN_05B, max_model_len=8192, available=20 * GIB, kv_cache_gib=1.4)
    assert (plan.kv_cache_gib, plan.max_model_len) == (1, 8192)
    assert plan.reason == "as configured"


def test_environment_numbers_are_checked(monkeypatch):
    monkeypatch.setenv("MANYSHOT_KV_CACHE_GIB", "lots")
    with pytest.raises(ValueError, match="MANYSHOT_KV_CACHE_GIB='lots'"):
        from_environment("MANYSHOT_KV_CACHE_GIB")
    monkeypatch.setenv("MANYSHOT_KV_CACHE_GIB", "6")
    assert from_environment("MANYSHOT_KV_CACHE_GIB") == 6.0
    monkeypatch.delenv("MANYSHOT_KV_CACHE_GIB")
    assert from_environment("MANYSHOT_KV_CACHE_GIB") is None


def test_the_context_flag_overrides_the_models_default(monkeypatch):
    """--max-model-len (MANYSHOT_MAX_MODEL_LEN) beats the embedded models' own 32k; an explicit argument beats both.
    (Before, the model's default won and the flag did nothing for the embedded models.)"""
    from generators.vllm_backend import context_length

    monkeypatch.delenv("MANYSHOT_MAX_MODEL_LEN", raising=False)
    assert context_length(None, 32768) == 32768 and context_length(None, None) is None
    monkeypatch.setenv("MANYSHOT_MAX_MODEL_LEN", "16384")
    assert context_length(None, 32768) == 16384 and context_length(None, None) == 16384
    assert context_length(8192, 32768) == 8192
