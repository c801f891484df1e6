"""Networks nobody on this project wrote, at reduced sizes, for tests/test_outside_models.py.

- The PSN paper's published networks (fangwei123456/Parallel-Spiking-Neuron): `cifar10/train_cf10.py`'s
  CIFAR10Net (3 × [Conv2d 3×3, BatchNorm2d, neuron] then AvgPool2d(2), twice; Flatten, Linear,
  neuron, Linear: a logits head) and `sequential_cifar/train_secf10.py`'s CIFAR10Net (the same with
  Conv1d / BatchNorm1d / AvgPool1d over image rows, one image column per time step), written here
  from those definitions with the paper's neuron choices taken from SpikingJelly 2.0 (PSN,
  MaskedPSN, SlidingPSN, LIFNode and ParametricLIFNode with soft reset, as the paper compares).
- SpikingJelly 2.0's model zoo as installed: `model.sew_resnet.BasicBlock` (SEW ADD, AND, IAND),
  `model.spiking_resnet.BasicBlock`, `model.spiking_vgg.SpikingVGG.make_layers` assembled into
  ResNet-18 / VGG-11-bn skeletons at 1/8 of their widths, `model.parametric_lif_net.MNISTNet` itself,
  and the Fashion-MNIST CSNN of its tutorial (`examples/conv_fashion_mnist.py`).
Weights are random; `lively` sets batch-norm statistics and Linear scales so that every layer
fires on the test input.
"""

from __future__ import annotations

import torch
from torch import nn

from spikingjelly.activation_based import functional, layer, neuron


def paper_neuron(kind: str, T: int):
    """The PSN paper's neuron choices, as SpikingJelly 2.0 provides them."""
    if kind == "PSN":
        return neuron.PSN(T=T)
    if kind == "MaskedPSN":
        masked = neuron.MaskedPSN(k=2, T=T, lambda_init=1.0, step_mode="m")
        with torch.no_grad():  # a trained band: positive weights on the current and last input
            masked.weight.abs_().add_(0.5)
            masked.bias.fill_(-0.5)
        return masked
    if kind == "SlidingPSN":
        return neuron.SlidingPSN(k=2, exp_init=True, step_mode="m")
    if kind == "LIF":
        return neuron.LIFNode(tau=2.0, detach_reset=True, v_reset=None, step_mode="m")
    if kind == "PLIF":
        return neuron.ParametricLIFNode(init_tau=2.0, detach_reset=True, v_reset=None, step_mode="m")
    raise ValueError(kind)


def lively(model: nn.Module, x, drive: float = 0.5) -> nn.Module:
    """Make every layer of a randomly initialised network fire on the sample x, as a trained one
    does: batch norms normalise what x gives them (running statistics measured on x, weight 1,
    bias `drive`), and every Linear layer is rescaled to outputs of unit spread and
    mean `drive` on x. Returns the model in eval mode."""
    x = torch.as_tensor(x)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: one pass gives the statistics of x
            m.weight.fill_(1.0)
            m.bias.fill_(drive)
        model.train()
        functional.reset_net(model)
        model(x)
        model.eval()
        for linear in [m for m in model.modules() if isinstance(m, nn.Linear)]:
            seen = []
            hook = linear.register_forward_hook(lambda m, i, o: seen.append(o))
            functional.reset_net(model)
            model(x)
            hook.remove()
            out = seen[0].flatten(0, -2)
            spread, mean = out.std(0).clamp_min(1e-6), out.mean(0)
            linear.weight.div_(spread[:, None])
            if linear.bias is not None:
                linear.bias.copy_((linear.bias - mean) / spread + drive)
        functional.reset_net(model)
    return model


def paper_conv_stages(conv, norm, pool, channels: int, kind: str, T: int) -> nn.Sequential:
    """Both papers' feature extractor: two stages of three [conv 3, batch norm, neuron], each
    stage ending in a pooling by 2."""
    layers = []
    for stage in range(2):
        for _ in range(3):
            layers += [conv(3 if not layers else channels, channels, kernel_size=3, padding=1, bias=False), norm(channels), paper_neuron(kind, T)]
        layers.append(pool())
    return nn.Sequential(*layers)


class PSNPaperCIFAR10Net(nn.Module):
    """cifar10/train_cf10.py's CIFAR10Net (channels 128 → `channels`); the paper's IFNode5 is the PSN."""

    def __init__(self, channels: int, kind: str, T: int):
        super().__init__()
        self.conv = paper_conv_stages(layer.Conv2d, layer.BatchNorm2d, lambda: layer.AvgPool2d(2, 2), channels, kind, T)
        self.fc = nn.Sequential(
            layer.Flatten(),
            layer.Linear(channels * 8 * 8, channels * 8 * 8 // 4),
            paper_neuron(kind, T),
            layer.Linear(channels * 8 * 8 // 4, 10),
        )
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):  # [T, N, 3, 32, 32]: the paper repeats the image T times
        return self.fc(self.conv(x_seq))


class PSNPaperSequentialCIFARNet(nn.Module):
    """sequential_cifar/train_secf10.py's CIFAR10Net: one image column per step, Conv1d over the rows
    ([W, N, C, H], the paper's `x_seq.permute(3, 0, 1, 2)`, done by the caller); its final
    `mean(0)` is left to spc's accuracy, which sums the output over time."""

    def __init__(self, channels: int, kind: str, T: int, height: int, classes: int = 10):
        super().__init__()
        self.conv = paper_conv_stages(layer.Conv1d, layer.BatchNorm1d, lambda: layer.AvgPool1d(2), channels, kind, T)
        self.fc = nn.Sequential(
            layer.Flatten(),
            layer.Linear(channels * height // 4, channels * height // 16),
            paper_neuron(kind, T),
            layer.Linear(channels * height // 16, classes),
        )
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):
        return self.fc(self.conv(x_seq))


def resnet18(block, width: int = 8, classes: int = 10, **block_options) -> nn.Module:
    """torchvision's ResNet-18 layout (as SpikingJelly's SEWResNet / SpikingResNet build it: stem
    conv 7×7 stride 2, BN, neuron, max pool; four stages of two blocks, the first of stages 2-4
    downsampling by a 1×1 conv and BN; adaptive average pool, flatten, Linear) from the zoo's own
    BasicBlock, at `width` channels in the first stage instead of 64."""
    spiking = block_options["spiking_neuron"]
    stages, inplanes = [], width
    for i, planes in enumerate((width, 2 * width, 4 * width, 8 * width)):
        stride = 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(layer.Conv2d(inplanes, planes, 1, stride=stride, bias=False), layer.BatchNorm2d(planes))
        blocks = [block(inplanes, planes, stride, downsample, **block_options), block(planes, planes, **block_options)]
        stages.append(nn.Sequential(*blocks))
        inplanes = planes

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = layer.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = layer.BatchNorm2d(width)
            self.sn1 = spiking()
            self.maxpool = layer.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1, self.layer2, self.layer3, self.layer4 = stages
            self.avgpool = layer.AdaptiveAvgPool2d((1, 1))
            self.fc = layer.Linear(8 * width, classes)

        def forward(self, x):  # SpikingJelly's _forward_impl in multi-step mode
            x = self.maxpool(self.sn1(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 2))

    net = ResNet18()
    functional.set_step_mode(net, "m")
    return net


class VGG11BN(nn.Module):
    """SpikingVGG('A', batch_norm=True)'s layout: the zoo's own make_layers for the features at
    `width`/64 of its widths, then its head (AdaptiveAvgPool2d((7, 7)), Linear, neuron, Dropout,
    Linear, neuron, Dropout, Linear) with 8·width hidden units instead of 4096."""

    def __init__(self, width: int = 8, classes: int = 10):
        from spikingjelly.activation_based.model.spiking_vgg import SpikingVGG, cfgs

        super().__init__()
        cfg = [v if v == "M" else v * width // 64 for v in cfgs["A"]]
        hidden = 8 * width
        self.features = SpikingVGG.make_layers(cfg=cfg, batch_norm=True, neuron=neuron.IFNode)
        self.avgpool = layer.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            layer.Linear(cfg[-2] * 7 * 7, hidden), neuron.IFNode(), layer.Dropout(),
            layer.Linear(hidden, hidden), neuron.IFNode(), layer.Dropout(),
            layer.Linear(hidden, classes),
        )
        functional.set_step_mode(self, "m")

    def forward(self, x):  # SpikingVGG.forward in multi-step mode
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 2))


class FashionMNISTCSNN(nn.Module):
    """SpikingJelly's Fashion-MNIST tutorial CSNN (examples/conv_fashion_mnist.py), its conv_fc at
    `channels`; the tutorial's expand over T and mean over T are left to the caller and spc."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_fc = nn.Sequential(
            layer.Conv2d(1, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            neuron.IFNode(),
            layer.MaxPool2d(2, 2),
            layer.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            neuron.IFNode(),
            layer.MaxPool2d(2, 2),
            layer.Flatten(),
            layer.Linear(channels * 7 * 7, channels * 4 * 4, bias=False),
            neuron.IFNode(),
            layer.Linear(channels * 4 * 4, 10, bias=False),
            neuron.IFNode(),
        )
        functional.set_step_mode(self, "m")

    def forward(self, x_seq):
        return self.conv_fc(x_seq)
