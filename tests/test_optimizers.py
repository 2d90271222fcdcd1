"""optim.name: the step of SGD scales with the loss; AdamW's and RMSprop's first steps do not.

This is why ``genpref bench nash`` trains with SGD: in a self-play iteration of one or two optimiser
steps, a normalising optimiser takes the same step whatever η multiplies the targets."""

import torch

from genpref.train.config import OptimConfig
from genpref.train.schedule import build_optimizer


def first_step(name: str, scale: float) -> torch.Tensor:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1, bias=False)
    before = model.weight.detach().clone()
    optimizer, _ = build_optimizer(
        model, OptimConfig(name=name, lr=0.01, warmup_ratio=0.0, scheduler="constant"), total_steps=1
    )
    loss = scale * model(torch.tensor([[1.0, -2.0, 0.5]])).sum()
    loss.backward()
    optimizer.step()
    return model.weight.detach() - before


def test_sgd_step_is_lr_times_gradient_and_scales_with_the_loss():
    step = first_step("sgd", 1.0)
    assert torch.allclose(step, -0.01 * torch.tensor([[1.0, -2.0, 0.5]]))
    assert torch.allclose(first_step("sgd", 3.0), 3 * step)
    assert isinstance(
        build_optimizer(torch.nn.Linear(1, 1), OptimConfig(name="sgd"), total_steps=1)[0], torch.optim.SGD
    )


def test_adamw_and_rmsprop_first_steps_ignore_the_loss_scale():
    for name in ("adamw", "rmsprop"):
        assert torch.allclose(first_step(name, 1.0), first_step(name, 3.0), atol=1e-6), name
