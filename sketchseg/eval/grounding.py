"""Does the category token look at the sketch? A diagnostic of the category level (SPEC §3.5-§3.6, §4).

Training asks the category token VCT_c of a masked sketch to be close to its category text CCT_c. With the
cross-attention of SPEC §3.5 the token's query is made from CCT_c, so the token can also match its text by reading
the query instead of the strokes: the loss then falls while the masks, the only thing the category level is meant
to improve, stay as they were. This module measures how much the token depends on the image.

For every annotated sketch with two or more categories and every category c of it, VCT_c (the last exit block,
through ``ln_post`` and the projection) is computed with c's text on four images (:func:`grounding_images`):

* ``own``: only the strokes of c (ground truth);
* ``predicted``: the model's own masked sketch for c, the image training feeds the category level;
* ``whole``: the whole sketch;
* ``other``: only the strokes of the sketch's next category (vocabulary order, cyclic).

For each image kind the result holds ``top1``, the share of (sketch, c) whose VCT_c is more similar to CCT_c than
to the text of every other category of the sketch, and ``cosine``, the mean cosine similarity of VCT_c with CCT_c.
A token grounded in the sketch scores high on ``own`` and low on ``other`` (about 1 / number of categories); a token
that scores as high on ``other`` as on ``own`` reads its category from the text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sketchseg.eval.evaluate import EvalSample
from sketchseg.model.image import model_input
from sketchseg.model.network import SketchSegModel

KINDS = ("own", "predicted", "whole", "other")


def grounding_images(sample: EvalSample) -> dict[str, list[np.ndarray]]:
    """For each category of ``sample`` (vocabulary order): the 512 rasters of the image kinds that need no model
    (``own``, ``whole``, ``other``), uint8 black strokes on white. Pixels go to their ground-truth owner stroke
    (the evaluator's last-stroke-wins rule)."""
    labels = sample.raster.label_map(sample.stroke_labels)  # [512, 512], -1 = background
    n = len(sample.vocabulary)
    own = [np.where(labels == c, 0, 255).astype(np.uint8) for c in range(n)]
    return {"own": own, "whole": [sample.image] * n, "other": [own[(c + 1) % n] for c in range(n)]}


@torch.no_grad()
def category_grounding(
    model: SketchSegModel, samples: Sequence[EvalSample], progress: bool = False, batch_size: int = 16
) -> dict[str, dict[str, float | None] | int]:
    """Top-1 and mean cosine of the category token per image kind (module docstring), over the (sketch, category)
    pairs of ``samples`` with two or more categories. Returns {"pairs": N, kind: {"top1", "cosine"}} (None without
    such a sketch). ``batch_size`` sketches go through the encoder together: one pass for their whole sketches, one
    category-level pass for every image of every kind of them."""
    from sketchseg.progress import progress as progress_bar

    model.eval()
    device = next(model.parameters()).device
    last = max(model.encoder.cross_blocks)
    hits: dict[str, list[float]] = {k: [] for k in KINDS}
    cosines: dict[str, list[float]] = {k: [] for k in KINDS}
    chosen = [s for s in samples if len(s.vocabulary) >= 2]
    bar = progress_bar(total=len(chosen), desc="grounding", unit="sketch", enabled=progress, leave=False)
    for start in range(0, len(chosen), batch_size):
        chunk = chosen[start : start + batch_size]
        texts = [F.normalize(model.encode_categories(s.vocabulary).float(), dim=-1) for s in chunk]  # [C_i, D]
        images = [{k: model_input(v, model.image_size).to(device) for k, v in grounding_images(s).items()}
                  for s in chunk]  # fmt: skip
        whole = torch.cat([im["whole"][:1] for im in images])  # [B, 1, S, S]
        feats = model.encode_sketch(whole, need_scene=False)
        batch_images, batch_text = [], []
        for i, (im, text) in enumerate(zip(images, texts, strict=True)):
            one = feats.sample(i)
            maps = model.category_maps(one, text)  # [1, C, S, S]
            masked, _ = model.masked_sketches(whole[i : i + 1], maps)  # [1, C, S, S]
            im["predicted"] = masked[0].unsqueeze(1)  # [C, 1, S, S]
            batch_images += [im[kind] for kind in KINDS]
            batch_text += [text.to(masked.dtype)] * len(KINDS)
        tokens = model.category_tokens(torch.cat(batch_images), torch.cat(batch_text))[last]  # [sum 4 C_i, D]
        offset = 0
        for text in texts:
            n = len(text)
            for kind in KINDS:
                token = tokens[offset : offset + n]  # [C, D]
                offset += n
                sim = F.normalize(token.float(), dim=-1) @ text.T  # [C, C]: row c = VCT_c against every category
                hits[kind] += (sim.argmax(dim=1) == torch.arange(n, device=sim.device)).float().tolist()
                cosines[kind] += sim.diagonal().tolist()
        bar.update(len(chunk))
    bar.close()
    out: dict[str, dict[str, float | None] | int] = {"pairs": len(hits["own"])}
    for kind in KINDS:
        values = hits[kind]
        out[kind] = {
            "top1": float(np.mean(values)) if values else None,
            "cosine": float(np.mean(cosines[kind])) if values else None,
        }
    return out
