"""The demo's tiny chat model: a byte-level BPE tokenizer trained on its corpus, a chat template and a small Qwen3 network.

Built and pretrained by the ``pretrain_demo_model`` rule, saved with ``save_pretrained`` and loaded
downstream with ``from_pretrained`` exactly as a hub model would be. Its pretraining corpus is a set
of dialogues written by the toy domains' imperfect authors (see ``pidistill.domains.toy_math``):
single answers, and retry dialogues in which a wrong answer is followed by the domain's retry
message and a different attempt. The toy spaces are small and the corpus covers them whole (see
``pidistill.domains.toy_math``), with the author's mistakes in it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pidistill.io import honour_umask

SPECIAL_TOKENS = ["<|pad|>", "<|unk|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
EOS = "<|end|>"
PAD = "<|pad|>"

# One line, so the template renders no stray whitespace. The assistant turn, end token included,
# sits inside {% generation %} so TRL's assistant-only loss trains the model to stop.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{%- else -%}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on ``texts``, with the chat template set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=EOS,
        pad_token=PAD,
        unk_token="<|unk|>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
        model_max_length=512,
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@dataclass
class TinyModelConfig:
    """Shape of the tiny network and its pretraining (the config's ``models.<name>.pretrain``)."""

    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 512
    steps: int = 1500
    batch_size: int = 32
    # each optimizer batch is run as this many micro-batches of similar length (gradient accumulation;
    # the same examples per update, far less padding: see ``pretrain``)
    micro_batches: int = 4
    learning_rate: float = 3e-3
    seed: int = 0
    corpus_size: int = 6000
    retry_fraction: float = 0.3
    hint_fraction: float = 0.5
    feedback_max_chars: int = 160  # the checker's messages in a formal hint, cut as the demo's type-checker PI
    vocab_size: int = 512  # the tokenizer's (a model that continues another keeps that one's tokenizer)
    p_correct: dict = field(default_factory=lambda: {"math": 0.5, "code": 0.5})
    init_from: str | None = None  # continue pretraining this model (its architecture and tokenizer)

    def __post_init__(self) -> None:
        if self.batch_size % self.micro_batches:
            raise ValueError(f"pretrain: batch_size {self.batch_size} is not a multiple of micro_batches "
                             f"{self.micro_batches}")


def build_model(cfg: TinyModelConfig, tokenizer):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(cfg.seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.hidden_size // cfg.heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


# the toy loader -> the module of its imperfect author (the pretrain rule lists the ones its corpus uses
# as code, so editing another toy domain does not retrain the model)
AUTHORS = {"toy_math": "pidistill.domains.toy_math", "toy_code": "pidistill.domains.toy_code",
           "toy_formal": "pidistill.domains.toy_formal_author"}
# the same authors without the checker: what a tokenizer's corpus needs is their text, not Coq's verdicts
# (the formal author's checker messages are replaced by peer hints, see corpus_dialogues)
WRITERS = {**AUTHORS, "toy_formal": "pidistill.domains.toy_formal"}


def author_module(loader: str, checker: bool = True) -> str:
    try:
        return (AUTHORS if checker else WRITERS)[loader]
    except KeyError:
        raise ValueError(f"loader {loader!r} has no toy author to write a pretraining corpus (known: "
                         f"{', '.join(sorted(AUTHORS))})") from None


def _peer_hint(module, item, rng: random.Random, p_correct: float) -> str:
    """A hint line from a peer as reliable as the author: about the item itself with probability
    ``p_correct``, otherwise about another random item. Rendered with the PI templates' wording."""
    from pidistill.retry import DEFAULT_TEMPLATES

    about = item if rng.random() < p_correct else module.random_item(rng)
    if module.DOMAIN == "formal":  # the outline of the proof where it has one, else the proof
        if about.skeleton and rng.random() < 0.5:
            return DEFAULT_TEMPLATES["skeleton"].format(pi=about.skeleton)
        return DEFAULT_TEMPLATES["gold"].format(pi=about.proof)
    if module.DOMAIN == "math":
        return DEFAULT_TEMPLATES["gold"].format(pi=about.value)
    if rng.random() < 0.5:
        return DEFAULT_TEMPLATES["gold"].format(pi=module.code_for(about.body()))
    tests = "\n".join(f"assert f({x}) == {about.value(x)}" for x in module.hidden_inputs(about))
    return DEFAULT_TEMPLATES["tests"].format(pi=tests)


def corpus_dialogues(domains: dict[str, str], retry_texts: dict[str, str], cfg: TinyModelConfig,
                     checker: bool = True) -> list[dict]:
    """Pretraining dialogues from the toy authors; ``domains`` maps dataset name -> toy loader name.

    A retry dialogue's message is the domain's retry text; in ``hint_fraction`` of them it is
    followed by a peer's hint line (see ``_peer_hint``), so the model has seen retry messages that
    carry extra information of the same reliability as its own attempts, neither always right nor
    always noise. In a formal domain whose author reads the checker (``attempt_feedback``), a third
    of those hints are instead the checker's messages on the first attempt (cut to
    ``feedback_max_chars``), as the type-checker PI carries them; they are checked in one batch at
    the end. With ``checker=False`` (a tokenizer's corpus) no attempt is checked: those hints are
    peer hints too.
    """
    import importlib

    modules = {name: importlib.import_module(author_module(name, checker)) for name in set(domains.values())}
    rng = random.Random(cfg.seed)
    names = sorted(domains)
    rows: list[dict] = []
    checked: dict[str, list[tuple]] = {}  # author module -> (row, item, theorem, first attempt): the checker's word
    while len(rows) < cfg.corpus_size:
        name = names[len(rows) % len(names)]
        module = modules[domains[name]]
        item = module.random_item(rng)
        domain = module.DOMAIN
        p = cfg.p_correct[domain]
        render = module.format_answer if domain == "math" else (lambda v: v)
        if domain == "formal":  # a theorem name like the dataset's (toy_<split>_<index>)
            theorem = f"toy_{rng.choice(('train', 'test'))}_{rng.randrange(10000):04d}"
            prompt = module.prompt_for(item, theorem)
        else:
            prompt = module.prompt_for(item)
        if rng.random() < cfg.retry_fraction and module.slips(item):
            first = rng.choice(module.slips(item))
            first_text = module.code_for(first) if domain == "code" else render(first)
            if domain == "formal":  # the author's second try is not the slip it just made
                second = module.author_attempt(item, rng, p)
                while second == first:
                    second = module.author_attempt(item, rng, p)
            else:
                second = module.author_attempt(item, rng, p, avoid=first if domain == "math" else first_text)
            message = retry_texts[domain]
            if rng.random() < cfg.hint_fraction:
                if hasattr(module, "attempt_feedback") and rng.random() < 1 / 3:
                    checked.setdefault(domains[name], []).append((len(rows), item, theorem, first_text))
                else:
                    message += "\n" + _peer_hint(module, item, rng, p)
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": first_text},
                {"role": "user", "content": message},
                {"role": "assistant", "content": render(second)},
            ]
        else:
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": render(module.author_attempt(item, rng, p))},
            ]
        rows.append({"messages": messages})
    from pidistill.retry import DEFAULT_TEMPLATES

    for author, pending in sorted(checked.items()):
        feedback = modules[author].attempt_feedback([attempt for _, *attempt in pending])
        for (row, *_), text in zip(pending, feedback):
            if text.strip():
                rows[row]["messages"][2]["content"] += "\n" + DEFAULT_TEMPLATES["feedback"].format(
                    pi=text.strip()[:cfg.feedback_max_chars])
    return rows


def tokenizer_corpus(loaders: dict[str, str], retry_texts: dict[str, str], cfg: TinyModelConfig,
                     corpus_datasets: int) -> list[dict]:
    """More dialogues for a fresh model's tokenizer (``tokenizer_datasets``; ``loaders``: dataset
    name -> toy loader): as many per dataset as the model's corpus has per each of its
    ``corpus_datasets`` datasets, unchecked (``checker=False``), by an author right half the time in
    a domain ``cfg.p_correct`` does not name (the tokenizer needs the text, right or wrong)."""
    share = dataclasses.replace(cfg, corpus_size=cfg.corpus_size * len(loaders) // corpus_datasets,
                                p_correct={**dict.fromkeys(retry_texts, 0.5), **cfg.p_correct})
    return corpus_dialogues(loaders, retry_texts, share, checker=False)


def pretrain(
    out_dir: str | Path,
    cfg: TinyModelConfig,
    dialogues: list[dict],
    threads: int = 1,
    init_dir: str | Path | None = None,
    tokenizer_dialogues: list[dict] = (),
) -> dict:
    """Train the tiny model on ``dialogues`` (assistant-only loss) and save it to ``out_dir``.

    A fresh model's tokenizer is trained on ``dialogues`` and ``tokenizer_dialogues`` (text the
    model is not trained on, as a hub model's tokenizer covers more than its tuning data). With
    ``init_dir`` (the saved model of ``cfg.init_from``), training continues from that model, with
    its tokenizer and architecture, instead of a fresh network."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # denormals make CPU training crawl
    if init_dir is not None:
        from transformers import AutoTokenizer, Qwen3ForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(init_dir)
        model = Qwen3ForCausalLM.from_pretrained(init_dir, dtype=torch.float32)
    else:
        tokenizer = build_tokenizer((m["content"] for d in (*dialogues, *tokenizer_dialogues) for m in d["messages"]),
                                    vocab_size=cfg.vocab_size)
        model = build_model(cfg, tokenizer)
    args = SFTConfig(
        output_dir=str(Path(out_dir) / "_trainer"),
        max_steps=cfg.steps,
        # An optimizer batch of random dialogues pads every one to its longest (toy dialogues: 37 tokens
        # on average, batches of 64 padded to 104), and on a CPU TRL's fused LM head scores the padding
        # too. transformers' batch_rebalance sampler keeps each update's examples a random draw but runs
        # them as micro-batches of similar length: the same loss (normalised over the whole batch's
        # tokens), 1.5-3x faster steps. (Its shuffle has a fixed seed of its own; `seed` still seeds the
        # network.) Batches *grouped* by length (group_by_length) are another thing: they put answers of
        # one length together and cut toy-math pass@1 from 45% to 7%.
        per_device_train_batch_size=cfg.batch_size // cfg.micro_batches,
        gradient_accumulation_steps=cfg.micro_batches,
        train_sampling_strategy="batch_rebalance",
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, cfg.steps // 20),
        weight_decay=0.0,
        logging_steps=max(1, cfg.steps // 30),
        save_strategy="no",
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),
        assistant_only_loss=True,
        max_length=cfg.max_positions,
        dataset_num_proc=None,
        # TRL's default recomputes the forward pass in the backward one: slower on a CPU, the same
        # gradients (the same model, 1.6x faster).
        gradient_checkpointing=False,
        # TRL's default is bf16 autocast, on a CPU too: emulated where the CPU has no bf16
        # instructions (AVX2-only x86: every matmul ~10x slower), and the demo model is float32.
        bf16=False,
        disable_tqdm=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(dialogues), processing_class=tokenizer)
    trainer.train()
    import shutil

    shutil.rmtree(Path(out_dir) / "_trainer", ignore_errors=True)  # trainer scratch: not part of the model
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    honour_umask(out_dir)
    history = [
        {"step": h["step"], "loss": round(float(h["loss"]), 6)} for h in trainer.state.log_history if "loss" in h
    ]
    return {"n_params": sum(p.numel() for p in model.parameters()), "loss_history": history}
