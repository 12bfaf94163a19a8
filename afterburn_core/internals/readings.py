"""Running sums over batches of both models' residual streams: what ``compare_pair`` feeds, reduced on the fly.

Contract: ``Readings(adl_positions, lens_inputs)``; ``add(batch, base_states,
trained_states, base_lens, trained_lens)`` per batch; then ``layer_stats(input_set)``,
``layer_readings(...)``, ``adl_means()``, ``mean_norms()`` and ``prompt_lenses(...)`` read the totals.
Nothing per position is kept past its batch except the lens views of the few ``lens_inputs``, so
memory is flat in corpus size.

Per layer and input set it sums, over every real position past the first, ‖h_t − h_b‖ / ‖h_b‖, the
cosine of h_t and h_b, and KL(trained ‖ base) between the two lenses (each model's final norm and
unembedding applied to its own h); the first position apart (``SINK_POSITIONS``). On the neutral set
it also sums p_t − p_b of the two lenses (the tokens gained and lost), the differences h_t − h_b at
positions 0..k−1 (the activation-difference lens) and ‖h_t‖ (the scale patchscope writes at).
Arithmetic is fp32 whatever the models' dtype. Cost per batch: per layer two head projections
(rows × positions × vocab × hidden) and three log-softmaxes over the vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from afterburn_core.internals.passes import Batch
from afterburn_core.internals.types import LayerReading, LayerStats, PromptLens, TokenScore

#: Positions reported apart: the first token of a sequence is an attention sink in most models (Xiao et al.
#: 2023, "Efficient streaming language models with attention sinks"), its state huge and its differences not
#: comparable to the rest.
SINK_POSITIONS = 1
#: Positions shown in a prompt's layer × position lens: the last ones, where a chat prompt hands over to the
#: assistant; a screen-wide heatmap.
LENS_MAX_POSITIONS = 48
#: Norms below this are treated as zero when dividing (fp32 states of a real model are never this small).
_TINY = 1e-30
NEUTRAL = "neutral"


class _Sums:
    """Per-layer sums of one input set."""

    def __init__(self, layers: int) -> None:
        import torch

        self.sequences = 0
        self.positions = 0
        self.sinks = 0
        self.relative_norm = torch.zeros(layers, dtype=torch.float64)
        self.cosine = torch.zeros(layers, dtype=torch.float64)
        self.kl = torch.zeros(layers, dtype=torch.float64)
        self.sink_relative_norm = torch.zeros(layers, dtype=torch.float64)
        self.sink_cosine = torch.zeros(layers, dtype=torch.float64)


class Readings:
    def __init__(self, adl_positions: int, lens_inputs: Mapping[str, str]) -> None:
        self.num_layers = 0  # set by the first batch's states
        self.adl_positions = adl_positions
        self.lens_inputs = dict(lens_inputs)  # input_id -> label shown
        self.sums: dict[str, _Sums] = {}
        self.probability_shift = None  # [layers, vocab] on the neutral set
        self.adl_sum = None  # [layers, k, hidden]
        self.adl_count = None  # [k]
        self.norm_sum = None  # [layers]
        self.lenses: dict[str, tuple] = {}

    def add(self, batch: Batch, base_states, trained_states, base_lens: Callable, trained_lens: Callable) -> None:
        import torch

        self.num_layers = self.num_layers or int(trained_states.shape[0])
        device = trained_states.device
        lengths = torch.tensor(batch.lengths, device=device)
        width = batch.input_ids.shape[1]
        valid = torch.arange(width, device=device)[None, :] < lengths[:, None]
        body = valid.clone()
        body[:, :SINK_POSITIONS] = False
        sink = valid & ~body
        sets = [row.input_set for row in batch.rows]
        for name in dict.fromkeys(sets):
            sums = self.sums.setdefault(name, _Sums(self.num_layers))
            rows = torch.tensor([each == name for each in sets], device=device)
            sums.sequences += int(rows.sum())
            sums.positions += int((body & rows[:, None]).sum())
            sums.sinks += int((sink & rows[:, None]).sum())
        neutral_rows = torch.tensor([each == NEUTRAL for each in sets], device=device)
        for layer in range(self.num_layers):
            base, trained = base_states[layer].float(), trained_states[layer].float()
            base_norm, trained_norm = base.norm(dim=-1), trained.norm(dim=-1)
            relative = (trained - base).norm(dim=-1) / base_norm.clamp_min(_TINY)
            cosine = (trained * base).sum(-1) / (base_norm * trained_norm).clamp_min(_TINY)
            base_log = torch.log_softmax(base_lens(base_states[layer]), dim=-1)
            trained_log = torch.log_softmax(trained_lens(trained_states[layer]), dim=-1)
            trained_p = trained_log.exp()
            kl = (trained_p * (trained_log - base_log)).sum(-1).clamp_min(0.0)
            for name in dict.fromkeys(sets):
                sums = self.sums[name]
                rows = torch.tensor([each == name for each in sets], device=device)[:, None]
                in_body, in_sink = body & rows, sink & rows
                sums.relative_norm[layer] += float(relative[in_body].double().sum())
                sums.cosine[layer] += float(cosine[in_body].double().sum())
                sums.kl[layer] += float(kl[in_body].double().sum())
                sums.sink_relative_norm[layer] += float(relative[in_sink].double().sum())
                sums.sink_cosine[layer] += float(cosine[in_sink].double().sum())
            if bool(neutral_rows.any()):
                self._add_neutral(layer, base, trained, trained_norm, base_log, trained_p,
                                  body & neutral_rows[:, None], valid & neutral_rows[:, None])
            self._add_lenses(batch, layer, kl, base_log, trained_log)

    def _add_neutral(self, layer, base, trained, trained_norm, base_log, trained_p, body, valid) -> None:
        import torch

        if self.probability_shift is None:
            self.probability_shift = torch.zeros((self.num_layers, base_log.shape[-1]), dtype=torch.float64)
            self.adl_sum = torch.zeros((self.num_layers, self.adl_positions, base.shape[-1]), dtype=torch.float64)
            self.adl_count = torch.zeros(self.adl_positions, dtype=torch.float64)
            self.norm_sum = torch.zeros(self.num_layers, dtype=torch.float64)
        shift = (trained_p - base_log.exp())[body]
        self.probability_shift[layer] += shift.double().sum(0).cpu()
        self.norm_sum[layer] += float(trained_norm[body].double().sum())
        positions = min(self.adl_positions, base.shape[1])
        early = valid[:, :positions]
        difference = (trained[:, :positions] - base[:, :positions]) * early[..., None]
        self.adl_sum[layer, :positions] += difference.double().sum(0).cpu()
        if layer == 0:
            self.adl_count[:positions] += early.double().sum(0).cpu()

    def _add_lenses(self, batch: Batch, layer: int, kl, base_log, trained_log) -> None:
        for index, row in enumerate(batch.rows):
            if row.input_id not in self.lens_inputs:
                continue
            length = batch.lengths[index]
            start = max(0, length - LENS_MAX_POSITIONS)
            cells = self.lenses.setdefault(row.input_id, (row, [], [], []))
            cells[1].append(tuple(float(value) for value in kl[index, start:length]))
            cells[2].append(tuple(int(value) for value in base_log[index, start:length].argmax(-1)))
            cells[3].append(tuple(int(value) for value in trained_log[index, start:length].argmax(-1)))

    # --- reading the totals ---------------------------------------------------------------------------

    def input_sets(self) -> tuple[str, ...]:
        return tuple(self.sums)

    def counts(self, input_set: str) -> tuple[int, int]:
        sums = self.sums[input_set]
        return sums.sequences, sums.positions

    def layer_stats(self, input_set: str) -> tuple[LayerStats, ...]:
        sums = self.sums[input_set]
        body, sinks = max(sums.positions, 1), max(sums.sinks, 1)
        return tuple(
            LayerStats(layer, float(sums.relative_norm[layer] / body), float(sums.cosine[layer] / body),
                       float(sums.kl[layer] / body), float(sums.sink_relative_norm[layer] / sinks),
                       float(sums.sink_cosine[layer] / sinks))
            for layer in range(self.num_layers)
        )

    def layer_readings(self, token: Callable[[int, float], TokenScore], top_n: int) -> tuple[LayerReading, ...]:
        """The neutral set's per-layer statistics with the lens tokens gained and lost most."""
        import torch

        stats = self.layer_stats(NEUTRAL)
        positions = max(self.sums[NEUTRAL].positions, 1)
        readings = []
        for layer, each in enumerate(stats):
            shift = self.probability_shift[layer] / positions
            gained = torch.topk(shift, min(top_n, shift.numel()))
            lost = torch.topk(-shift, min(top_n, shift.numel()))
            readings.append(LayerReading(
                **vars(each),
                gained=tuple(token(int(i), float(v)) for v, i in zip(gained.values, gained.indices) if v > 0),
                lost=tuple(token(int(i), float(v)) for v, i in zip(lost.values, lost.indices) if v > 0),
            ))
        return tuple(readings)

    def adl_means(self):
        """[layers, k, hidden] mean differences h_t − h_b at positions 0..k−1 of the neutral set (fp64)."""
        return self.adl_sum / self.adl_count.clamp_min(1.0)[None, :, None]

    def mean_norms(self):
        """[layers] mean ‖h_t‖ over the neutral set's positions past the sink."""
        return self.norm_sum / max(self.sums[NEUTRAL].positions, 1)

    def prompt_lenses(self, token_text: Callable[[int], str]) -> tuple[PromptLens, ...]:
        lenses = []
        for input_id, (row, kl, base_top, trained_top) in self.lenses.items():
            length = len(row.token_ids)
            shown = row.token_ids[max(0, length - LENS_MAX_POSITIONS):]
            lenses.append(PromptLens(
                self.lens_inputs[input_id], tuple(token_text(i) for i in shown), tuple(kl),
                tuple(tuple(token_text(i) for i in layer) for layer in base_top),
                tuple(tuple(token_text(i) for i in layer) for layer in trained_top),
            ))
        return tuple(lenses)
