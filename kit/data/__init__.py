"""Datasets, templates and supervised encoding."""

from kit.data.loader import DataError, DatasetAttr, Example, load_examples, read_registry, resolve_dataset_dir
from kit.data.sft import IGNORE_INDEX, SFTData, build_sft, check_new_output, encode_example, encode_supervised, infer_seqlen, preview, split_indices, write_jsonl
from kit.data.template import Template, TemplateError, check_vocab, get as get_template, with_thinking

__all__ = [
    "DataError", "DatasetAttr", "Example", "IGNORE_INDEX", "SFTData", "Template", "TemplateError", "build_sft",
    "check_vocab", "encode_example", "encode_supervised", "get_template", "infer_seqlen", "load_examples", "preview", "read_registry",
    "check_new_output", "resolve_dataset_dir", "split_indices", "with_thinking", "write_jsonl",
]
