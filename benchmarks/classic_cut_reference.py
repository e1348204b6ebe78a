"""A re-implementation of the reference CUT training step, for timing (issue 29: "CUT >= 2.0x the CUT reference step").

Written for the side-by-side benchmark (``bench.py --models cut``), after the structure of the public reference code
(taesungp/contrastive-unpaired-translation: ``models/cut_model.py``, ``models/networks.py``,
``models/patchnce.py``), not copied from it, at that code's defaults for ``--CUT_mode CUT``:

* generator: the ResNet-9 generator with anti-aliased resampling (a stride-1 convolution, then a reflect-padded
  [1, 2, 1] blur subsampling; up: a replicate-padded [1, 3, 3, 1] transposed blur, then a stride-1 convolution),
  instance norm, its ``forward(x, layers, encode_only)`` returning the outputs of layers 0, 4, 8, 12, 16;
* discriminator: the 70x70 PatchGAN with the same anti-aliased subsampling after each of its stride-2 layers;
* ``PatchSampleF`` (``mlp_sample``): 256 locations drawn with ``np.random.permutation`` on the host for each
  layer, a two-layer MLP of 256 channels per layer built lazily on the first batch (``data_dependent_initialize``),
  L2 normalisation; ``PatchNCELoss`` with temperature 0.07 and negatives from the same image;
* step (``optimize_parameters``): G on cat(A, B) (the NCE identity pass shares the forward), D step on
  (fake.detach, real B), then G and F step: LSGAN + (NCE(A, G(A)) + NCE(B, G(B))) / 2, one Adam for G, one for D
  and one for F (lr 2e-4, betas (0.5, 0.999)); xavier-normal initialisation with gain 0.02.

Parameter counts: generator 11,378,179 (the classic ResNet-9's: the blur filters are buffers), discriminator
2,764,737, the heads 560,384 at 256 px: 14.70 M, as ours (``python benchmarks/classic_cut_reference.py``).
Nothing here is used by the framework; only the benchmark imports it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from classic_reference import ClassicGANLoss, ClassicResnetBlock, classic_norm, set_requires_grad
from torch import Tensor, nn

NCE_LAYERS = (0, 4, 8, 12, 16)


def _binomial(size: int) -> Tensor:
    row = torch.tensor({3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[size])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class ReferenceDownsample(nn.Module):
    """Reflect-pad by 1, depthwise 3x3 binomial blur, stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", _binomial(3)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReflectionPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=x.shape[1])


class ReferenceUpsample(nn.Module):
    """Replicate-pad by 1, depthwise 4x4 binomial transposed convolution of stride 2 (gain 4), then crop."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", (_binomial(4) * 4)[None, None].repeat(channels, 1, 1, 1))
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=x.shape[1])[:, :, 1:, 1:]
        return out[:, :, :-1, :-1]  # an even filter: one more row and column to drop


class ReferenceCUTGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        norm = classic_norm("instance")
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=1, padding=1), norm(ngf * mult * 2),
                       nn.ReLU(True), ReferenceDownsample(ngf * mult * 2)]
        layers += [ClassicResnetBlock(ngf * 4, norm, use_bias=True) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [ReferenceUpsample(ngf * mult), nn.Conv2d(ngf * mult, ngf * mult // 2, 3, stride=1, padding=1),
                       norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor, layers: tuple[int, ...] = (), encode_only: bool = False) -> Tensor | list[Tensor]:
        if not layers:
            return self.model(x)
        feats = []
        for layer_id, layer in enumerate(self.model):
            x = layer(x)
            if layer_id in layers:
                feats.append(x)
            if layer_id == layers[-1] and encode_only:
                return feats
        raise ValueError("the reference step only asks for encoder features")


class ReferenceCUTDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        norm = classic_norm("instance")
        seq: list[nn.Module] = [nn.Conv2d(3, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True), ReferenceDownsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1), norm(ndf * mult), nn.LeakyReLU(0.2, True),
                    ReferenceDownsample(ndf * mult)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1), norm(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def xavier_init(net: nn.Module, gain: float = 0.02) -> nn.Module:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight.data, gain=gain)
            if m.bias is not None:
                nn.init.constant_(m.bias.data, 0.0)
    return net


class ReferencePatchSampleF(nn.Module):
    """Host-drawn locations per layer, a lazily built MLP per layer, L2 normalisation."""

    def __init__(self, nc: int = 256) -> None:
        super().__init__()
        self.nc = nc
        self.mlp_init = False

    def create_mlp(self, feats: list[Tensor]) -> None:
        for mlp_id, feat in enumerate(feats):
            mlp = nn.Sequential(nn.Linear(feat.shape[1], self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc))
            setattr(self, f"mlp_{mlp_id}", mlp.to(feat.device))
        xavier_init(self)
        self.mlp_init = True

    def forward(self, feats: list[Tensor], num_patches: int, patch_ids: list[Tensor] | None = None
                ) -> tuple[list[Tensor], list[Tensor]]:
        if not self.mlp_init:
            self.create_mlp(feats)
        return_feats, return_ids = [], []
        for feat_id, feat in enumerate(feats):
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[feat_id]
            else:
                ids = np.random.permutation(feat_reshape.shape[1])[: min(num_patches, feat_reshape.shape[1])]
                patch_id = torch.tensor(ids, dtype=torch.long, device=feat.device)
            x_sample = getattr(self, f"mlp_{feat_id}")(feat_reshape[:, patch_id, :].flatten(0, 1))
            norm = x_sample.pow(2).sum(1, keepdim=True).pow(0.5)
            return_feats.append(x_sample.div(norm + 1e-7))
            return_ids.append(patch_id)
        return return_feats, return_ids


class ReferencePatchNCELoss(nn.Module):
    def __init__(self, batch_size: int, nce_t: float = 0.07) -> None:
        super().__init__()
        self.batch_size, self.nce_t = batch_size, nce_t
        self.cross_entropy_loss = nn.CrossEntropyLoss(reduction="none")

    def forward(self, feat_q: Tensor, feat_k: Tensor) -> Tensor:
        num_patches, dim = feat_q.shape
        feat_k = feat_k.detach()
        l_pos = torch.bmm(feat_q.view(num_patches, 1, -1), feat_k.view(num_patches, -1, 1)).view(num_patches, 1)
        feat_q = feat_q.view(self.batch_size, -1, dim)
        feat_k = feat_k.view(self.batch_size, -1, dim)
        npatches = feat_q.size(1)
        l_neg = torch.bmm(feat_q, feat_k.transpose(2, 1))
        diagonal = torch.eye(npatches, device=feat_q.device, dtype=torch.bool)[None, :, :]
        l_neg.masked_fill_(diagonal, -10.0)
        out = torch.cat((l_pos, l_neg.view(-1, npatches)), dim=1) / self.nce_t
        return self.cross_entropy_loss(out, torch.zeros(out.size(0), dtype=torch.long, device=feat_q.device))


class ClassicCUT:
    """The reference CUT model's training step (``optimize_parameters``) and generator, batch 1 by default."""

    def __init__(self, ngf: int = 64, ndf: int = 64, num_patches: int = 256, batch_size: int = 1, lr: float = 2e-4,
                 device: str = "cpu") -> None:
        self.device, self.lr, self.num_patches = device, lr, num_patches
        self.netG = xavier_init(ReferenceCUTGenerator(ngf)).to(device)
        self.netD = xavier_init(ReferenceCUTDiscriminator(ndf)).to(device)
        self.netF = ReferencePatchSampleF().to(device)
        self.criterionGAN = ClassicGANLoss("lsgan").to(device)
        self.criterionNCE = [ReferencePatchNCELoss(batch_size).to(device) for _ in NCE_LAYERS]
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=(0.5, 0.999))
        self.optimizer_F: torch.optim.Optimizer | None = None

    def networks(self) -> list[nn.Module]:
        return [self.netG, self.netD, self.netF]

    def set_input(self, batch: dict[str, Tensor]) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]
        if self.optimizer_F is None:
            self.data_dependent_initialize()

    def data_dependent_initialize(self) -> None:
        """The reference's first batch: build F's MLPs from real feature shapes, then F's optimiser."""
        self.forward()
        self.compute_D_loss().backward()
        self.compute_G_loss().backward()
        self.optimizer_F = torch.optim.Adam(self.netF.parameters(), lr=self.lr, betas=(0.5, 0.999))

    def forward(self) -> None:
        self.real = torch.cat((self.real_A, self.real_B), dim=0)
        self.fake = self.netG(self.real)
        self.fake_B = self.fake[: self.real_A.size(0)]
        self.idt_B = self.fake[self.real_A.size(0):]

    def compute_D_loss(self) -> Tensor:
        loss_fake = self.criterionGAN(self.netD(self.fake_B.detach()), False).mean()
        loss_real = self.criterionGAN(self.netD(self.real_B), True).mean()
        return (loss_fake + loss_real) * 0.5

    def compute_G_loss(self) -> Tensor:
        loss_gan = self.criterionGAN(self.netD(self.fake_B), True).mean()
        loss_nce = self.calculate_NCE_loss(self.real_A, self.fake_B)
        loss_nce_y = self.calculate_NCE_loss(self.real_B, self.idt_B)
        return loss_gan + (loss_nce + loss_nce_y) * 0.5

    def calculate_NCE_loss(self, src: Tensor, tgt: Tensor) -> Tensor:
        feat_q = self.netG(tgt, NCE_LAYERS, encode_only=True)
        feat_k = self.netG(src, NCE_LAYERS, encode_only=True)
        feat_k_pool, sample_ids = self.netF(feat_k, self.num_patches, None)
        feat_q_pool, _ = self.netF(feat_q, self.num_patches, sample_ids)
        total = 0.0
        for f_q, f_k, crit in zip(feat_q_pool, feat_k_pool, self.criterionNCE):
            total = total + crit(f_q, f_k).mean()
        return total / len(NCE_LAYERS)

    def optimize_parameters(self) -> None:
        assert self.optimizer_F is not None, "set_input() first: it runs the data-dependent initialisation"
        self.forward()
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        self.compute_D_loss().backward()
        self.optimizer_D.step()
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        self.optimizer_F.zero_grad()
        self.compute_G_loss().backward()
        self.optimizer_G.step()
        self.optimizer_F.step()

    def generator(self) -> nn.Module:
        return self.netG


def parameter_counts(size: int = 256) -> dict[str, int]:
    """Parameters of the transcribed networks at ``size`` px (the heads' input widths depend only on the layers)."""
    def count(net: nn.Module) -> int:
        return sum(p.numel() for p in net.parameters())

    model = ClassicCUT()
    model.set_input({"A": torch.rand(1, 3, size, size) * 2 - 1, "B": torch.rand(1, 3, size, size) * 2 - 1})
    return {"generator": count(model.netG), "discriminator": count(model.netD), "heads": count(model.netF)}


if __name__ == "__main__":
    counts = parameter_counts(64)
    for name, value in counts.items():
        print(f"{name:14s} {value:,}")
    print(f"{'total':14s} {sum(counts.values()):,}")
