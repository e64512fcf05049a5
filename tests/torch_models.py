"""The real networks the torch-frontend coverage is measured on (tests/test_torch_coverage.py,
benchmarks/torch_coverage.py): every torchvision classification and segmentation model,
and a broad sample of timm 1.0 CNN families plus a few conv/attention hybrids."""

from __future__ import annotations

# One or two per family, the smallest of each where timm has several sizes.
TIMM_SAMPLE = (
    # ResNet and its variants: ResNet-D, SE, ECA, ResNeXt, Res2Net, ResNeSt, SK, TResNet
    "resnet18", "resnet50d", "resnet26t", "seresnet50", "seresnext26d_32x4d", "ecaresnet26t",
    "resnext50_32x4d", "res2net50_26w_4s", "res2next50", "resnest14d", "skresnet18",
    "tresnet_m", "nf_resnet26", "dm_nfnet_f0", "gernet_s",
    # EfficientNet / MixNet / MobileNet v1-v4 / NAS nets / GhostNet / RexNet / LCNet
    "efficientnet_b0", "tf_efficientnet_b0", "efficientnet_lite0", "efficientnetv2_rw_t",
    "tinynet_a", "mixnet_s", "mobilenetv1_100", "mobilenetv2_100", "mobilenetv3_large_100",
    "mobilenetv3_small_100", "mobilenetv4_conv_small", "fbnetc_100", "mnasnet_100",
    "semnasnet_100", "spnasnet_100", "ghostnet_100", "ghostnetv2_100", "repghostnet_050",
    "rexnet_100", "lcnet_050",
    # RegNet, ConvNeXt v1/v2, DPN, DenseNet, VGG
    "regnetx_002", "regnety_002", "regnetz_b16", "convnext_atto", "convnext_tiny",
    "convnextv2_atto", "dpn68", "densenet121", "vgg11",
    # Inception, Xception, CSP / Darknet, HRNet, DLA, VoVNet, RepVGG / MobileOne, others
    "inception_v3", "inception_v4", "inception_resnet_v2", "xception41", "legacy_xception",
    "cspresnet50", "cspdarknet53", "cs3darknet_s", "darknet53", "hrnet_w18_small",
    "hrnet_w18", "dla34", "dla60x", "ese_vovnet19b_dw", "repvgg_a0", "mobileone_s0",
    "repvit_m1", "selecsls42b", "hgnet_tiny", "convmixer_768_32", "poolformer_s12",
    "inception_next_tiny", "rdnet_tiny", "starnet_s1",
    # conv / attention hybrids
    "coat_tiny", "edgenext_small", "efficientformer_l1", "mobilevit_xxs", "fastvit_t8",
    "levit_128s", "efficientvit_b0",
)


def torchvision_models() -> list[str]:
    """torchvision's classification and segmentation builders (not the quantized ones)."""
    import torchvision.models as tvm

    return sorted({*tvm.list_models(module=tvm), *tvm.list_models(module=tvm.segmentation)})


def timm_input(module) -> tuple[int, ...]:
    """The input size the timm model is configured for (299 for Inception, 256 ...)."""
    size = getattr(module, "pretrained_cfg", {}).get("input_size") or (3, 224, 224)
    return tuple(size)
