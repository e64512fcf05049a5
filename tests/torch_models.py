"""The real networks the torch-frontend coverage is measured on (tests/test_torch_coverage.py,
benchmarks/torch_coverage.py): every torchvision classification and segmentation model,
and a broad sample of timm 1.0 CNN families plus a few conv/attention hybrids."""

from __future__ import annotations

# torchvision 0.29's classification and segmentation models (test_torch_coverage.py checks
# this against torchvision.models.list_models).
TORCHVISION_MODELS = (
    "alexnet", "convnext_base", "convnext_large", "convnext_small", "convnext_tiny",
    "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet101", "deeplabv3_resnet50",
    "densenet121", "densenet161", "densenet169", "densenet201", "efficientnet_b0",
    "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_l",
    "efficientnet_v2_m", "efficientnet_v2_s", "fcn_resnet101", "fcn_resnet50", "googlenet",
    "inception_v3", "lraspp_mobilenet_v3_large", "maxvit_t", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
    "regnet_x_16gf", "regnet_x_1_6gf", "regnet_x_32gf", "regnet_x_3_2gf", "regnet_x_400mf",
    "regnet_x_800mf", "regnet_x_8gf", "regnet_y_128gf", "regnet_y_16gf", "regnet_y_1_6gf",
    "regnet_y_32gf", "regnet_y_3_2gf", "regnet_y_400mf", "regnet_y_800mf", "regnet_y_8gf",
    "resnet101", "resnet152", "resnet18", "resnet34", "resnet50", "resnext101_32x8d",
    "resnext101_64x4d", "resnext50_32x4d", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1", "swin_b",
    "swin_s", "swin_t", "swin_v2_b", "swin_v2_s", "swin_v2_t", "vgg11", "vgg11_bn", "vgg13",
    "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vit_b_16", "vit_b_32",
    "vit_h_14", "vit_l_16", "vit_l_32", "wide_resnet101_2", "wide_resnet50_2",
)

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
