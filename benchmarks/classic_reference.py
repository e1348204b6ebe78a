"""A re-implementation of the classic CycleGAN / pix2pix / DCGAN training steps and inference, for timing.

Written for the side-by-side benchmark (``bench.py``), after the structure of the public reference code
(junyanz/pytorch-CycleGAN-and-pix2pix: ``models/cycle_gan_model.py``, ``models/pix2pix_model.py``,
``models/networks.py``, ``util/image_pool.py``; pytorch/examples ``dcgan/main.py``), not copied from it:

* networks: the classic ResNet generator, recursive U-Net (``UnetSkipConnectionBlock``), ``NLayerDiscriminator``
  (PatchGAN) and DCGAN pair, with the classic layer order, bias rule and init; parameter counts equal
  REFERENCE.md's (checked in ``python benchmarks/classic_reference.py``);
* CycleGAN step: ``forward()`` (G_A(A), G_B(G_A(A)), G_B(B), G_A(G_B(B))), ``set_requires_grad(D, False)``,
  ``backward_G`` (identity G_A(B), G_B(A), adversarial, cycle), ``optimizer_G.step()``,
  ``set_requires_grad(D, True)``, ``backward_D_A`` and ``backward_D_B`` (pool queries, real/fake, x0.5, one
  ``backward()`` each), ``optimizer_D.step()``; one Adam over both G and one over both D;
* pix2pix step: G(A); D step on (A, G(A)).detach / (A, B); G step with the vanilla GAN loss + 100 x L1;
* DCGAN step: D on real (backward), D on fake.detach (backward), D step; G step on D(fake);
* inference: ``model.eval()``, ``torch.no_grad()``, batch 1.

Nothing here is used by the framework; only the benchmark imports it.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

import torch
from torch import Tensor, nn

# ----------------------------------------------------------------------------------------------- networks


def classic_norm(kind: str) -> Callable[[int], nn.Module]:
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    raise ValueError(kind)


def _bias_for(norm: Callable[[int], nn.Module]) -> bool:
    # The classic rule: convolutions carry a bias only when the norm is instance norm.
    return isinstance(norm, functools.partial) and norm.func is nn.InstanceNorm2d


class ClassicResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: Callable[[int], nn.Module], use_bias: bool, use_dropout: bool = False) -> None:
        super().__init__()
        # use_dropout puts Dropout(0.5) right after the first ReLU (conv_block.4), shifting the second half by one.
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True),
            *([nn.Dropout(0.5)] if use_dropout else []),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ClassicResnetGenerator(nn.Module):
    def __init__(self, in_nc: int = 3, out_nc: int = 3, ngf: int = 64, norm: str = "instance", n_blocks: int = 9,
                 use_dropout: bool = False) -> None:
        super().__init__()
        norm_layer = classic_norm(norm)
        use_bias = _bias_for(norm_layer)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, ngf, 7, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm_layer(ngf * mult * 2), nn.ReLU(True)]
        layers += [ClassicResnetBlock(ngf * 4, norm_layer, use_bias, use_dropout) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ClassicUnetBlock(nn.Module):
    """One level of the recursive U-Net: ``x -> cat([x, up(sub(down(x)))])`` (outermost: no concat)."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: Callable[[int], nn.Module] | None = None,
                 use_dropout: bool = False) -> None:
        super().__init__()
        assert norm is not None
        self.outermost = outermost
        use_bias = _bias_for(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=use_bias)
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
            model = [downconv, submodule, *up]
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias), norm(outer_nc)]
            model = [nn.LeakyReLU(0.2, True), downconv, *up]
        else:
            down = [nn.LeakyReLU(0.2, True), downconv, norm(inner_nc)]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias), norm(outer_nc)]
            model = [*down, submodule, *up] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class ClassicUnetGenerator(nn.Module):
    def __init__(self, in_nc: int = 3, out_nc: int = 3, num_downs: int = 8, ngf: int = 64, norm: str = "batch",
                 use_dropout: bool = True) -> None:
        super().__init__()
        norm_layer = classic_norm(norm)
        block = ClassicUnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm_layer)
        for _ in range(num_downs - 5):
            block = ClassicUnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm_layer, use_dropout=use_dropout)
        block = ClassicUnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm_layer)
        block = ClassicUnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm_layer)
        block = ClassicUnetBlock(ngf, ngf * 2, submodule=block, norm=norm_layer)
        self.model = ClassicUnetBlock(out_nc, ngf, input_nc=in_nc, submodule=block, outermost=True, norm=norm_layer)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ClassicNLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        norm_layer = classic_norm(norm)
        use_bias = _bias_for(norm_layer)
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias), norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ClassicDCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z)


class ClassicDCGANDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def classic_init(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """normal(0, 0.02) for conv / linear weights, zero biases; batch-norm weights normal(1, 0.02)."""
    for m in net.modules():
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight.data, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight.data, 1.0, gain)
            nn.init.constant_(m.bias.data, 0.0)
    return net


# ----------------------------------------------------------------------------------------------- losses, pool


class ClassicGANLoss(nn.Module):
    """MSE (lsgan) or BCE-with-logits (vanilla) against a target tensor expanded to the prediction's shape."""

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.MSELoss() if mode == "lsgan" else nn.BCEWithLogitsLoss()

    def __call__(self, prediction: Tensor, target_is_real: bool) -> Tensor:  # type: ignore[override]
        target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        return self.loss(prediction, target)


class ClassicImagePool:
    """History of fakes with Python's ``random``: return the new image, or (p=0.5) swap it for an old one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                index = random.randint(0, self.size - 1)
                old = self.images[index].clone()
                self.images[index] = image
                out.append(old)
            else:
                out.append(image)
        return torch.cat(out, 0)


def set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


# ----------------------------------------------------------------------------------------------- models


class ClassicCycleGAN:
    """The classic CycleGAN model's training step (``optimize_parameters``) and generator."""

    def __init__(self, ngf: int = 64, ndf: int = 64, n_blocks: int = 9, lambda_a: float = 10.0, lambda_b: float = 10.0,
                 lambda_identity: float = 0.5, pool_size: int = 50, lr: float = 2e-4, device: str = "cpu",
                 n_layers: int = 3) -> None:
        self.netG_A = classic_init(ClassicResnetGenerator(ngf=ngf, n_blocks=n_blocks)).to(device)
        self.netG_B = classic_init(ClassicResnetGenerator(ngf=ngf, n_blocks=n_blocks)).to(device)
        self.netD_A = classic_init(ClassicNLayerDiscriminator(ndf=ndf, n_layers=n_layers)).to(device)
        self.netD_B = classic_init(ClassicNLayerDiscriminator(ndf=ndf, n_layers=n_layers)).to(device)
        self.fake_A_pool, self.fake_B_pool = ClassicImagePool(pool_size), ClassicImagePool(pool_size)
        self.criterionGAN = ClassicGANLoss("lsgan").to(device)
        self.criterionCycle, self.criterionIdt = nn.L1Loss(), nn.L1Loss()
        self.lambda_a, self.lambda_b, self.lambda_identity = lambda_a, lambda_b, lambda_identity
        g_params = list(self.netG_A.parameters()) + list(self.netG_B.parameters())
        d_params = list(self.netD_A.parameters()) + list(self.netD_B.parameters())
        self.optimizer_G = torch.optim.Adam(g_params, lr=lr, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(d_params, lr=lr, betas=(0.5, 0.999))

    def networks(self) -> list[nn.Module]:
        return [self.netG_A, self.netG_B, self.netD_A, self.netD_B]

    def set_input(self, batch: dict[str, Tensor]) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D_basic(self, netD: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        loss_real = self.criterionGAN(netD(real), True)
        loss_fake = self.criterionGAN(netD(fake.detach()), False)
        loss = (loss_real + loss_fake) * 0.5
        loss.backward()
        return loss

    def backward_D_A(self) -> None:
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))

    def backward_D_B(self) -> None:
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))

    def backward_G(self) -> None:
        lambda_idt, lambda_a, lambda_b = self.lambda_identity, self.lambda_a, self.lambda_b
        if lambda_idt > 0:
            self.idt_A = self.netG_A(self.real_B)
            self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_b * lambda_idt
            self.idt_B = self.netG_B(self.real_A)
            self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_a * lambda_idt
        else:
            self.loss_idt_A = self.loss_idt_B = 0
        self.loss_G_A = self.criterionGAN(self.netD_A(self.fake_B), True)
        self.loss_G_B = self.criterionGAN(self.netD_B(self.fake_A), True)
        self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_a
        self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_b
        self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                       + self.loss_idt_A + self.loss_idt_B)
        self.loss_G.backward()

    def optimize_parameters(self) -> None:
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_A()
        self.backward_D_B()
        self.optimizer_D.step()

    def generator(self) -> nn.Module:
        return self.netG_A


class ClassicPix2Pix:
    """The classic pix2pix model's training step: D on the detached pair, then G (GAN + 100 x L1)."""

    def __init__(self, ngf: int = 64, ndf: int = 64, num_downs: int = 8, lambda_l1: float = 100.0, lr: float = 2e-4,
                 device: str = "cpu", n_layers: int = 3) -> None:
        self.netG = classic_init(ClassicUnetGenerator(num_downs=num_downs, ngf=ngf)).to(device)
        self.netD = classic_init(ClassicNLayerDiscriminator(input_nc=6, ndf=ndf, n_layers=n_layers, norm="batch")).to(device)
        self.criterionGAN = ClassicGANLoss("vanilla").to(device)
        self.criterionL1 = nn.L1Loss()
        self.lambda_l1 = lambda_l1
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=(0.5, 0.999))

    def networks(self) -> list[nn.Module]:
        return [self.netG, self.netD]

    def set_input(self, batch: dict[str, Tensor]) -> None:
        self.real_A, self.real_B = batch["A"], batch["B"]

    def optimize_parameters(self) -> None:
        self.fake_B = self.netG(self.real_A)
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        fake_ab = torch.cat((self.real_A, self.fake_B), 1)
        loss_d_fake = self.criterionGAN(self.netD(fake_ab.detach()), False)
        loss_d_real = self.criterionGAN(self.netD(torch.cat((self.real_A, self.real_B), 1)), True)
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        self.optimizer_D.step()
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        loss_g_gan = self.criterionGAN(self.netD(fake_ab), True)
        loss_g_l1 = self.criterionL1(self.fake_B, self.real_B) * self.lambda_l1
        (loss_g_gan + loss_g_l1).backward()
        self.optimizer_G.step()

    def generator(self) -> nn.Module:
        return self.netG


class ClassicDCGAN:
    """The pytorch/examples DCGAN step: D(real) and D(G(z).detach) backward, D step; G step on D(G(z))."""

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64, lr: float = 2e-4, device: str = "cpu") -> None:
        self.nz, self.device = nz, device
        self.netG = classic_init(ClassicDCGANGenerator(nz, ngf)).to(device)
        self.netD = classic_init(ClassicDCGANDiscriminator(ndf)).to(device)
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=lr, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=lr, betas=(0.5, 0.999))

    def networks(self) -> list[nn.Module]:
        return [self.netG, self.netD]

    def set_input(self, batch: dict[str, Tensor]) -> None:
        self.real = batch["image"]

    def optimize_parameters(self) -> None:
        n = self.real.size(0)
        self.netD.zero_grad()
        label = torch.full((n,), 1.0, device=self.real.device)
        self.criterion(self.netD(self.real), label).backward()
        fake = self.netG(torch.randn(n, self.nz, 1, 1, device=self.real.device))
        label.fill_(0.0)
        self.criterion(self.netD(fake.detach()), label).backward()
        self.optimizerD.step()
        self.netG.zero_grad()
        label.fill_(1.0)
        self.criterion(self.netD(fake), label).backward()
        self.optimizerG.step()

    def generator(self) -> nn.Module:
        return self.netG


CLASSIC_MODELS = {"cyclegan": ClassicCycleGAN, "pix2pix": ClassicPix2Pix, "dcgan": ClassicDCGAN}


def classic_inference(generator: nn.Module, image: Tensor) -> Tensor:
    """The classic test loop's network call: eval mode, no_grad, one image."""
    generator.eval()
    with torch.no_grad():
        return generator(image)


def parameter_counts() -> dict[str, int]:
    """Parameter counts of the transcribed networks (REFERENCE.md: 11,378,179 / 54,413,955 / 2,764,737 / 2,768,705)."""
    def count(net: torch.nn.Module) -> int:
        return sum(p.numel() for p in net.parameters())

    with torch.device("meta"):
        return {
            "resnet_9blocks_instance": count(ClassicResnetGenerator()),
            "unet_256_batch": count(ClassicUnetGenerator()),
            "patchgan_3ch_instance": count(ClassicNLayerDiscriminator()),
            "patchgan_6ch_batch": count(ClassicNLayerDiscriminator(input_nc=6, norm="batch")),
        }


if __name__ == "__main__":
    for name, value in parameter_counts().items():
        print(f"{name:28s} {value:,}")
