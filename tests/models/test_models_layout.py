"""Checkpoint layouts: which axis holds the features, read from the layers, and relative depth."""

from torch import nn

from augsens.models import load
from augsens.models.layout import checkpoint_layouts


class _ToTokens(nn.Module):
    def forward(self, x):
        return x.flatten(2).transpose(1, 2)  # [B, C, H, W] -> [B, HW, C]


class _ChannelsLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)  # [B, C, H, W] -> [B, H, W, C] (Swin-style stages)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 16, stride=16)  # 6 x 14 x 14
        self.tokens = _ToTokens()  # 196 x 6
        self.mlp = nn.Linear(6, 5)  # 196 x 5
        self.seq = nn.Conv1d(196, 7, 1)  # 7 x 5: a channels-first sequence
        self.nhwc = _ChannelsLast()
        self.head = nn.Linear(35, 3)

    def forward(self, x):
        y = self.stem(x)
        self.nhwc(y)
        return self.head(self.seq(self.mlp(self.tokens(y))).flatten(1))


def test_dims_follow_the_layers():
    m = load(_Net(), checkpoints=["stem", "tokens", "mlp", "seq", "nhwc", "head"])
    m.module.train()  # a caller's training flags come back as they were
    lay = checkpoint_layouts(m, m.checkpoints)
    assert all(mod.training for mod in m.module.modules())
    assert lay["stem"].dims == ("channel", "y", "x")
    assert lay["nhwc"].dims == ("y", "x", "channel") and lay["nhwc"].shape == (14, 14, 6)
    assert lay["tokens"].dims == ("token", "channel") and lay["mlp"].dims == ("token", "channel")
    assert lay["seq"].dims == ("channel", "token") and lay["seq"].shape == (7, 5)
    assert lay["head"].dims == ("unit",)
    # depth: weighted layers run so far / all of them (stem, mlp, seq, head)
    assert [lay[c].depth for c in ("stem", "tokens", "mlp", "seq", "head")] == [0.25, 0.25, 0.5, 0.75, 1.0]
    assert sum(len(mod._forward_hooks) for mod in m.module.modules()) == 0
