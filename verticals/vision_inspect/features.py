"""Patch features from an ImageNet backbone (PatchCore-style).

Two mid-level feature maps (`tf_efficientnet_lite0` stages 2 and 3: 40 + 112 channels at strides 8 and 16)
are each averaged over a 3 x 3 neighbourhood (local context, as PatchCore's aggregation), the coarser one
is upsampled to the finer grid, and both are concatenated: one D-dimensional vector per stride-8 patch."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from vai.core.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
from vai.core.compile import BatchForward
from vai.core.device import inference_autocast

DEFAULT_LAYERS = (2, 3)


@functools.lru_cache(maxsize=4)
def _backbone(name: str, pretrained: bool, layers: tuple[int, ...], init_seed: int,
              weights: str | None, device: str) -> torch.nn.Module:
    # the device is part of the key: Module.to moves in place, so a shared entry moved to one device would
    # silently move under every other extractor holding it
    if not pretrained:
        # The random-weights control: the same random network every time for a given seed.
        torch.manual_seed(init_seed)
    # create_backbone drops the blocks after the deepest requested feature; the model only ever infers here
    return create_backbone(name, pretrained=pretrained, weights=weights, inference=True, features_only=True,
                           out_indices=layers).to(device)


class PatchFeatureExtractor:
    """uint8 RGB images [N, S, S, 3] -> patch features [N, h, w, D] (float32)."""

    def __init__(self, backbone: str = "tf_efficientnet_lite0", *, pretrained: bool = True,
                 layers: tuple[int, ...] = DEFAULT_LAYERS, device: str | torch.device = "cpu",
                 init_seed: int = 0, batch_size: int = 16, weights: str | None = None, precision: str = "fp32"):
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision {precision!r}: use fp32 or bf16 (resolve 'auto' with core.device first)")
        self.backbone_name = backbone
        self.precision = precision  # bf16 autocast of the backbone only; pooling and everything after in fp32
        self.pretrained = pretrained
        self.layers = tuple(layers)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = _backbone(backbone, pretrained, self.layers, init_seed, weights, str(self.device))
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self._forward = BatchForward(self.model, self.batch_size, enabled=False)

    def use_compile(self, enabled: bool | None = None, n_items: int | None = None) -> bool:
        """Compile the backbone for what follows when `vai.core.compile` says it pays (GPU, or a CPU job of
        thousands of images); once compiled it stays compiled. Returns whether it is."""
        self._forward = self._forward.upgraded(enabled, n_items)
        return self._forward.compiled

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        outs = []
        for i in range(0, len(images), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[i:i + self.batch_size])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - self._mean) / self._std
            with inference_autocast(self.device, self.precision):
                feats = self._forward(x)
            size = feats[0].shape[-2:]
            maps = []
            for f in feats:
                f = F.avg_pool2d(f.float(), 3, stride=1, padding=1, count_include_pad=False)
                if f.shape[-2:] != size:
                    f = F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                maps.append(f)
            outs.append(torch.cat(maps, 1).permute(0, 2, 3, 1).contiguous())
        return torch.cat(outs) if outs else torch.zeros(0)


def check_augment(mode: str, hw: tuple[int, int]) -> None:
    """A VaiError for an augmentation the model resolution (height, width) cannot take."""
    from vai.core.errors import VaiError

    if mode not in ("none", "flip", "rot"):
        raise VaiError(f"augment {mode!r} is not one of none, flip, rot")
    if mode == "rot" and hw[0] != hw[1]:
        raise VaiError(f"augment 'rot' needs a square image size (got {hw[0]}x{hw[1]}): a 90-degree turn would "
                       "change the shape; 'flip' already includes the 180-degree turn")


def augment_views(images: np.ndarray, mode: str) -> np.ndarray:
    """Support-set augmentation: `none`, `flip` (h, v and both flips) or `rot` (all 8 flips/rotations).
    Use `none` for oriented parts whose flipped/rotated view would itself be a defect."""
    check_augment(mode, images.shape[1:3])
    if mode == "none":
        return images
    views = [images, images[:, :, ::-1], images[:, ::-1, :], images[:, ::-1, ::-1]]
    if mode == "rot":
        t = np.transpose(images, (0, 2, 1, 3))
        views += [t, t[:, :, ::-1], t[:, ::-1, :], t[:, ::-1, ::-1]]
    return np.concatenate([np.ascontiguousarray(v) for v in views])
