"""Trains the demo model (and its evaluation classifier) and writes the shipped files into demo_model/.

    OMP_NUM_THREADS=1 .venv/bin/python tools/demo/train_demo.py            # the shipped run (~30 min, 2 cores)
    make train-demo

Deterministic from --seed on a CPU with torch single-threaded. What it trains (docs/demo_model.md):
- the evaluation classifier (demo_model/classifier.safetensors): a small MLP, RGB digit -> digit/colours;
- the model (demo_model/flux_digits.safetensors, fp16): ComfyUI's Flux architecture, 4 double + 8 single
  blocks, hidden 96, trained by rectified-flow matching (x_s = (1-s) x0 + s noise, target noise - x0);
- the prompt embeddings (demo_model/prompt_embeddings.safetensors), learned jointly with the model.
Prompts are digit x foreground x background. Captions are noisy: the digit names a random other digit
10 % of the time, each colour a random other colour 30 % of the time. Then 10 % of examples are unconditional and otherwise each slot is dropped
independently with probability 10 %, so "" and partial prompts are learned too.
The raw weights are kept (no EMA).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import toolpath  # noqa: E402

toolpath.install()  # the role folders of tools/

import comfy_env  # noqa: E402

comfy_env.load_pack()

import comfy.model_management  # noqa: E402
import demo_data  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from raag_s2_guidance.demo_model import (  # noqa: E402
    SPEC,  # noqa: E402
    measure,
    model,
    pixels,
    spec,
)

P_UNCOND = 0.1
P_SLOT = 0.1
# Noisy captions: each attribute of a training caption names a random other value this often (digit,
# foreground, background). With exact captions the model learns the 900 prompts so well that unguided
# sampling is already right (~99 %), as with class labels, and guidance has nothing to fix; loose
# captions (like web alt-texts) give a conditional distribution that really contains off-prompt images,
# which is what guidance sharpens away. The digit is kept cleaner: at 30 % the model never learned
# the digit shapes well enough for any guidance to name them reliably.
P_WRONG = (0.1, 0.3, 0.3)


def train_classifier(data, seed: int, steps: int = 3000, log=print) -> measure.DigitClassifier:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = measure.DigitClassifier()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    k = len(SPEC.colour_names)
    for step in range(steps):
        idx = torch.randint(len(data["train_y"]), (256,), generator=gen)
        fg, bg = demo_data.random_colours(256, k, gen)
        x = demo_data.render(SPEC, data["train_x"][idx], fg, bg, gen)
        x = x + torch.randn(x.shape, generator=gen) * torch.rand((256, 1, 1, 1), generator=gen) * 0.06
        d, f, b = net(x)
        loss = F.cross_entropy(d, data["train_y"][idx]) + 0.5 * (F.cross_entropy(f, fg) + F.cross_entropy(b, bg))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    fg, bg = demo_data.random_colours(len(data["test_y"]), k, gen)
    x = demo_data.render(SPEC, data["test_x"], fg, bg, gen)
    with torch.no_grad():
        acc = (net(x)[0].argmax(1) == data["test_y"]).float().mean().item()
    log(f"classifier: held-out digit accuracy {acc:.3f}")
    return net, acc


def sample_sigmas(n: int, gen: torch.Generator) -> torch.Tensor:
    """Half uniform in (0, 1), half logit-normal(0, 1): every noise level, the middle more often."""
    uniform = torch.rand(n, generator=gen)
    logit = torch.sigmoid(torch.randn(n, generator=gen))
    pick = torch.rand(n, generator=gen) < 0.5
    return torch.where(pick, uniform, logit).clamp(1e-4, 1 - 1e-4)


def noisy_captions(ids: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each slot names a uniformly random *other* value with probability P_WRONG[slot]."""
    ids = ids.clone()
    n = len(ids)
    for slot, size in enumerate((10, len(SPEC.colour_names), len(SPEC.colour_names))):
        wrong = torch.rand(n, generator=gen) < P_WRONG[slot]
        shifted = (ids[:, slot] + torch.randint(1, size, (n,), generator=gen)) % size
        ids[:, slot] = torch.where(wrong, shifted, ids[:, slot])
    return ids


def drop_tokens(ids: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    ids = ids.clone()
    n = len(ids)
    uncond = torch.rand(n, generator=gen) < P_UNCOND
    nulls = torch.tensor([SPEC.null_digit, SPEC.null_colour, SPEC.null_colour])
    for slot in range(3):
        drop = uncond | (torch.rand(n, generator=gen) < P_SLOT)
        ids[drop, slot] = nulls[slot]
    return ids


@contextlib.contextmanager
def comfy_training_mode():
    """Tells ComfyUI that the model is being trained, where the running version asks: newer releases
    run Flux's rope through a fused kernel that has no autograd unless ``in_training`` is set (what
    core's own training node does). Older releases have no such flag and always use plain torch."""
    management = comfy.model_management
    if not hasattr(management, "in_training"):
        yield
        return
    previous = management.in_training
    management.in_training = True
    try:
        yield
    finally:
        management.in_training = previous


def rope_trains() -> bool:
    """Whether a gradient flows back through this ComfyUI's Flux rope in training mode. Some releases bind
    comfy_kitchen's fused rope, which has no autograd formula, and have no ``in_training`` switch yet."""
    from comfy.ldm.flux import math as flux_math

    q = torch.randn(1, 1, 2, 4, requires_grad=True)
    pe = flux_math.rope(torch.arange(2.0)[None], 4, 10000)[:, None]
    with comfy_training_mode():
        try:
            flux_math.apply_rope(q, q, pe)[0].sum().backward()
        except RuntimeError as err:
            if "autograd" not in str(err):
                raise
            return False
    return True


def train_model(data, args, log=print):
    if not rope_trains():
        raise RuntimeError("this ComfyUI's Flux rope cannot be trained (comfy_kitchen's fused rope has no autograd "
                           "and this release has no in_training switch): train the demo model on another release")
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    base = model.build_model()
    dm = base.diffusion_model
    model.init_weights(dm, gen)
    emb = model.PromptEmbeddings()
    with torch.no_grad():
        for table in (emb.digit, emb.fg, emb.bg):
            table.weight.copy_(torch.randn(table.weight.shape, generator=gen))
    dm.train()
    params = list(dm.parameters()) + list(emb.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    warmup = min(200, args.steps // 10)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    k = len(SPEC.colour_names)
    n_train = len(data["train_y"])
    started = time.monotonic()
    history, window = [], []
    # ComfyUI's Flux blocks update their residual stream in place (img += ...); saving a copy of every
    # tensor autograd keeps makes the unmodified model code trainable.
    keep_copies = torch.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t)
    for step in range(args.steps):
        idx = torch.randint(n_train, (args.batch,), generator=gen)
        fg, bg = demo_data.random_colours(args.batch, k, gen)
        x0 = pixels.to_model_space(demo_data.render(SPEC, data["train_x"][idx], fg, bg, gen))
        ids = drop_tokens(noisy_captions(torch.stack([data["train_y"][idx], fg, bg], dim=1), gen), gen)
        sigma = sample_sigmas(args.batch, gen)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma[:, None, None, None]
        x = (1 - s) * x0 + s * noise
        tokens, pooled = emb(ids)
        with keep_copies, comfy_training_mode():
            out = dm(x, sigma, tokens, y=pooled)
        loss = F.mse_loss(out, noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        window.append(loss.item())
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            mean = sum(window) / len(window)
            window = []
            elapsed = time.monotonic() - started
            history.append({"step": step + 1, "loss": round(mean, 5), "seconds": round(elapsed, 1)})
            eta = elapsed / (step + 1) * (args.steps - step - 1)
            log(f"step {step + 1}/{args.steps} loss {mean:.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{elapsed / 60:.1f} min (eta {eta / 60:.1f} min)")
    return dm, emb, history, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=6e-4)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--out", type=Path, default=spec.HERE,
                        help="folder for the three .safetensors and training.json (default: demo_model/)")
    parser.add_argument("--skip-classifier", action="store_true", help="keep the existing classifier")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    data = demo_data.load_split()

    def log(msg):
        print(msg, flush=True)

    meta = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "torch": torch.__version__, "p_uncond": P_UNCOND, "p_slot": P_SLOT, "p_wrong": list(P_WRONG)}
    if not args.skip_classifier:
        t0 = time.monotonic()
        net, acc = train_classifier(data, args.seed, log=log)
        safetensors.torch.save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                                    str(args.out / spec.CLASSIFIER_FILE.name))
        meta["classifier_heldout_digit_accuracy"] = round(acc, 4)
        meta["classifier_seconds"] = round(time.monotonic() - t0, 1)
    dm, emb, history, seconds = train_model(data, args, log=log)
    # Saved under the running ComfyUI's key names. The shipped file has ComfyUI 0.3.x names (QK-norm
    # ".scale"), which every supported version loads (newer ones rename them on load); a file retrained
    # on a newer ComfyUI has its names (".weight") and loads there and on newer versions only.
    weights = {k: v.detach().to(torch.float16).contiguous() for k, v in dm.state_dict().items()}
    safetensors.torch.save_file(weights, str(args.out / spec.WEIGHTS_FILE.name),
                                metadata={"format": "pt", "architecture": json.dumps(SPEC.architecture)})
    safetensors.torch.save_file({k: v.detach().contiguous() for k, v in emb.state_dict().items()},
                                str(args.out / spec.EMBEDDINGS_FILE.name))
    meta.update({"train_seconds": round(seconds, 1), "final_loss": history[-1]["loss"], "history": history,
                 "parameters": sum(v.numel() for v in weights.values())})
    (args.out / "training.json").write_text(json.dumps(meta, indent=1) + "\n")
    log(f"wrote {args.out}: {meta['parameters'] / 1e6:.2f} M parameters, {seconds / 60:.1f} min, "
        f"final loss {meta['final_loss']:.4f}")


if __name__ == "__main__":
    main()
