"""`PerStep`: apply ordinary (per-sample) layers to every time step of a time-major sequence."""

from torch import nn


class PerStep(nn.Sequential):
    """Run the contained layers on x [T, B, ...] by folding time into the batch: [T·B, ...].

    Use it for layers that expect a single sample batch, such as Conv2d, BatchNorm2d or pooling
    (SpikingJelly's `SeqToANNContainer` does the same and is accepted too).
    """

    def forward(self, x):
        steps, batch = x.shape[:2]
        y = super().forward(x.flatten(0, 1))
        return y.reshape((steps, batch) + y.shape[1:])
