"""Templates against tokenizers and models they may not fit."""

import re

import pytest

from kit.data.template import TemplateError, check_vocab, get


def _plain_tokenizer():
    """A byte-level BPE tokenizer with only <|endoftext|>: no ChatML tokens, as a non-Qwen model has."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(["Who are you? I am an assistant.", "Red, green and blue."] * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def test_qwen_template_on_a_tokenizer_without_im_end_does_not_fit():
    tokenizer = _plain_tokenizer()
    embedding_size = len(tokenizer)  # the model's vocab_size: every token it was trained with
    template = get("qwen")
    template.fix_tokenizer(tokenizer)  # adds <|im_end|> as eos, with a new id
    with pytest.raises(TemplateError) as err:
        check_vocab(template, tokenizer, embedding_size)
    msg = str(err.value)
    assert msg.startswith(f"template: 'qwen' needs <|im_end|> (eos token, id {embedding_size})")
    assert f"embedding has only {embedding_size} rows" in msg and "does not fit" in msg and "default" in msg


def test_default_template_fits_the_same_model():
    tokenizer = _plain_tokenizer()
    template = get("default")
    template.fix_tokenizer(tokenizer)
    check_vocab(template, tokenizer, len(tokenizer))


def test_added_token_inside_a_padded_embedding_fits():
    # Qwen's vocab_size is larger than its tokenizer: an added token still has a row.
    tokenizer = _plain_tokenizer()
    embedding_size = len(tokenizer) + 64
    template = get("qwen")
    template.fix_tokenizer(tokenizer)
    check_vocab(template, tokenizer, embedding_size)


def test_pad_token_outside_the_embedding_is_named():
    tokenizer = _plain_tokenizer()
    embedding_size = len(tokenizer)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    with pytest.raises(TemplateError, match=rf"needs <pad> \(pad token, id {embedding_size}\)"):
        check_vocab(get("default"), tokenizer, embedding_size)


def test_qwen_template_fits_a_chatml_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from helpers import make_tiny_model

    d = make_tiny_model(tmp_path / "m")
    tokenizer = AutoTokenizer.from_pretrained(str(d))
    template = get("qwen")
    template.fix_tokenizer(tokenizer)
    check_vocab(template, tokenizer, len(tokenizer))
    with pytest.raises(TemplateError, match=re.escape("needs <|im_end|> (eos token")):
        check_vocab(template, tokenizer, tokenizer.convert_tokens_to_ids("<|im_end|>"))


def test_qwen3_templates_are_known_and_fit_a_chatml_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    from helpers import make_tiny_model
    from kit.data.template import names

    assert {"qwen", "qwen3", "qwen3_nothink", "default", "empty"} <= set(names())
    qwen3, nothink = get("qwen3"), get("qwen3_nothink")
    # As LLaMA-Factory registers them: qwen3 is a ReasoningTemplate, qwen3_nothink a plain copy of qwen;
    # neither has qwen's default system prompt.
    assert qwen3.reasoning and not nothink.reasoning and not get("qwen").reasoning
    assert qwen3.default_system == nothink.default_system == ""
    assert qwen3.thought_words == ("<think>\n", "\n</think>\n\n") and qwen3.enable_thinking is True
    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "m")))
    for template in (qwen3, nothink):
        template.fix_tokenizer(tokenizer)
        check_vocab(template, tokenizer, len(tokenizer))
    with pytest.raises(TemplateError, match="'qwen3_nothnk' is not known; did you mean qwen3_nothink"):
        get("qwen3_nothnk")


def test_remove_and_split_thought_as_llamafactory():
    qwen3 = get("qwen3")
    assert qwen3.remove_thought("<think>\nwhy\n</think>\n\nanswer") == "answer"
    assert qwen3.remove_thought("a <think>\nx\n</think>\n\nb<think>\ny\n</think>\n\nc") == "a bc"
    assert qwen3.remove_thought("<think>no newlines</think>answer") == "<think>no newlines</think>answer"  # LF's pattern needs them
    assert qwen3.add_thought("answer") == "<think>\n\n</think>\n\nanswer"
    assert qwen3.has_thought("x</think>") and not qwen3.has_thought("plain")
    assert qwen3.split_thought("<think>\nwhy\n</think>\n\nanswer") == ("why", "answer")
