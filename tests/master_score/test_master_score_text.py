"""The sentiment model (Lightning head on sentence embeddings) and the real-data loaders."""
import numpy as np
import pytest

from vai.verticals.master_score.synthetic import template_sentences
from vai.verticals.master_score.text import SentimentModel, encode_cached, train_sentiment


def test_sentiment_head_learns_held_out_sentences_and_round_trips(tmp_path):
    data = template_sentences(300, seed=9)
    model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder="hashing", max_epochs=12,
                            hidden=32, model_dir=tmp_path / "m")
    assert model.metrics["n_test"] == 60 and model.metrics["test_accuracy"] > 0.9
    texts = ["Acme raises full-year guidance after strong demand", "Acme cuts full-year outlook"]
    s1, emb = model.score(texts)
    assert s1[0] > 0 > s1[1] and s1[0] - s1[1] > 0.3 and emb.shape == (2, 384)
    loaded = SentimentModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.score(texts)[0], s1, atol=1e-6)
    assert (tmp_path / "m" / "weights.safetensors").exists() and not list((tmp_path / "m").glob("*.pt*"))


def test_minilm_encoder_is_offline_semantic_and_cached(tmp_path):
    from vai.verticals.master_score.text import MiniLMEncoder

    enc = MiniLMEncoder(device="cpu")
    texts = ["Profit rose sharply", "profit fell and cut guidance", "The weather in Helsinki is cold"]
    e = encode_cached(enc, texts, cache_dir=tmp_path)
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    assert len(list(tmp_path.glob("minilm-*.npy"))) == 1
    np.testing.assert_array_equal(encode_cached(enc, texts, cache_dir=tmp_path), e)


@pytest.mark.data
def test_real_loaders_read_the_shared_data(shared_data_dir):
    from vai.verticals.master_score.calendar import assign_session
    from vai.verticals.master_score.io import load_benzinga_news, load_phrasebank, load_stocknet

    pb = load_phrasebank(shared_data_dir, "50")
    assert len(pb) == 4846 and set(pb["label"]) == {"positive", "neutral", "negative"}
    news, prices, sectors = load_stocknet(shared_data_dir, tickers=["AAPL", "XOM"])
    assert set(prices["ticker"]) == {"AAPL", "XOM"} and sectors["XOM"].startswith("Basic")
    sess = assign_session(news["published_at"].iloc[:2000])
    assert (sess.values >= news["published_at"].iloc[:2000].dt.tz_convert(None).dt.normalize().values).all()
    bz = load_benzinga_news(shared_data_dir)
    assert len(bz) > 9000 and bz["published_at"].dt.tz is not None


def test_minilm_bf16_embeddings_agree_with_fp32_and_cache_apart(tmp_path):
    from vai.verticals.master_score.text import MiniLMEncoder

    texts = ["Acme beats estimates and raises guidance", "Acme misses on revenue", "Acme beats estimates and raises guidance"]
    fp32 = MiniLMEncoder(device="cpu", precision="fp32")
    bf16 = MiniLMEncoder(device="cpu", precision="bf16")
    e32, e16 = encode_cached(fp32, texts, cache_dir=tmp_path), encode_cached(bf16, texts, cache_dir=tmp_path)
    assert e16.dtype == np.float32 and ((e32 * e16).sum(1) > 0.999).all()
    np.testing.assert_array_equal(e32[0], e32[2])  # a repeated headline is encoded once and copied
    assert len(list(tmp_path.glob("minilm-bf16-*.npy"))) == 1 and len(list(tmp_path.glob("minilm-*.npy"))) == 2


def test_minilm_packed_rows_give_sentence_transformers_embeddings(tmp_path):
    """Packing several headlines per row (block-diagonal attention, positions restarting per text) must give
    the embeddings of the plain one-text-per-row encode, for short, empty, long (> one row) and truncated texts."""
    from vai.verticals.master_score.text import PACK_ROW_TOKENS, MiniLMEncoder

    enc = MiniLMEncoder(device="cpu", precision="fp32")
    assert enc._packable
    texts = ["Acme beats estimates", "", "a", "Profit warning at Beta Corp as demand slumps in Europe"] * 3
    texts += ["word " * (PACK_ROW_TOKENS + 10), "long story " * 300]
    packed = enc._encode_here(texts)
    plain = enc._model.encode(texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    assert not np.isnan(packed).any()
    np.testing.assert_allclose(packed, plain, atol=2e-6)


def test_minilm_worker_processes_give_the_same_embeddings(monkeypatch):
    from vai.verticals.master_score.text import MiniLMEncoder

    enc = MiniLMEncoder(device="cpu", precision="fp32")
    texts = [f"Company {i} reports quarter {'up' if i % 2 else 'down'} {i % 7} percent" for i in range(40)]
    monkeypatch.setenv("VAI_ENCODER_PROCESSES", "1")
    here = enc.encode(texts)
    monkeypatch.setenv("VAI_ENCODER_PROCESSES", "2")
    assert enc.processes_for(len(texts)) == 2
    np.testing.assert_allclose(enc.encode(texts), here, atol=1e-5)
    monkeypatch.setenv("VAI_ENCODER_PROCESSES", "two")
    with pytest.raises(Exception, match="VAI_ENCODER_PROCESSES"):
        enc.processes_for(10)


def test_finetuned_minilm_learns_saves_and_reloads_with_its_own_cache_tag(tmp_path):
    from vai.core.errors import VaiError
    from vai.verticals.master_score.text import MiniLMEncoder

    data = template_sentences(300, seed=3)
    model = train_sentiment(data["sentence"].tolist(), data["label"].tolist(), encoder="minilm", finetune=True,
                            finetune_epochs=3, finetune_lr=1e-4, model_dir=tmp_path / "ft")
    assert model.metrics["finetuned"] and model.metrics["n_test"] == 60
    assert model.metrics["test_accuracy"] > 0.8  # held-out template sentences, through the deployed encoder
    base = MiniLMEncoder(device="cpu")
    assert model._enc().cache_tag != base.cache_tag and model.encoder_tag.startswith("ft")
    name = next(iter(model.encoder_weights))
    assert not np.allclose(model.encoder_weights[name].numpy(), base._model[0].model.state_dict()[name].float().numpy())
    texts = ["Acme raises full-year guidance after strong demand", "Acme cuts full-year outlook"]
    s1, e1 = model.score(texts, cache=False)
    loaded = SentimentModel.load(tmp_path / "ft")
    s2, e2 = loaded.score(texts, cache=False)
    np.testing.assert_allclose(s2, s1, atol=1e-6)
    np.testing.assert_allclose(e2, e1, atol=1e-6)
    assert s1[0] > s1[1]
    with pytest.raises(VaiError, match="MiniLM"):
        train_sentiment(["a", "b"], ["positive", "negative"], encoder="hashing", finetune=True)
