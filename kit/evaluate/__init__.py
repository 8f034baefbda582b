"""After training: predict on a dataset and score the predictions as LLaMA-Factory 0.9.5 does.

``metric`` computes BLEU-4 and ROUGE-1/2/L (LLaMA-Factory's ``ComputeSimilarity``); ``predict`` encodes
the prediction set, generates, and writes ``generated_predictions.jsonl`` and ``predict_results.json``;
``cli`` is ``kit predict``.
"""
