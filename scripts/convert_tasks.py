#!/usr/bin/env python3
"""Converts public multiple-choice task files into this project's JSONL task format (dev/data/tasks/README.md):
one {"context": str, "choices": [str, ...], "gold": int} per line, choices appended verbatim to the context.

Prompts follow lm-eval 0.3.0 (the seed's harness), so scores are comparable:
  hellaswag  HellaSwag jsonl (ctx_a, ctx_b, activity_label, endings, label)
  arc        ARC jsonl, Hugging Face layout (question, choices{text,label}, answerKey) or AllenAI's
             (question{stem, choices[{text,label}]}, answerKey)
  piqa       PIQA jsonl (goal, sol1, sol2) plus --labels FILE (one 0/1 per line)

usage: convert_tasks.py {hellaswag,arc,piqa} INPUT [--labels FILE] [-o OUTPUT]
Standard library only; nothing is downloaded.
"""
import argparse
import json
import re
import sys


def hellaswag_clean(text):
    # lm-eval 0.3.0 HellaSwag.preprocess: drop WikiHow "[title]"-style markers and double spaces.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def convert_hellaswag(doc, _):
    ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {"context": hellaswag_clean(doc["activity_label"] + ": " + ctx),
            "choices": [" " + hellaswag_clean(e) for e in doc["endings"]],
            "gold": int(doc["label"])}


def convert_arc(doc, _):
    q = doc["question"]
    if isinstance(q, dict):  # AllenAI's original layout
        stem, texts, labels = q["stem"], [c["text"] for c in q["choices"]], [c["label"] for c in q["choices"]]
    else:
        stem, texts, labels = q, list(doc["choices"]["text"]), list(doc["choices"]["label"])
    # Some ARC items label choices 1..5 instead of A..E; lm-eval maps them to letters the same way.
    num_to_letter = {"1": "A", "2": "B", "3": "C", "4": "D", "5": "E"}
    labels = [num_to_letter.get(l, l) for l in labels]
    key = num_to_letter.get(doc["answerKey"], doc["answerKey"])
    if key not in labels:
        raise ValueError("answerKey %r is not one of the choice labels %r" % (doc["answerKey"], labels))
    return {"context": "Question: " + stem + "\nAnswer:", "choices": [" " + t for t in texts],
            "gold": labels.index(key)}


def convert_piqa(doc, label):
    if label is None:
        raise ValueError("PIQA needs --labels (the labels file has one 0/1 per line)")
    return {"context": "Question: " + doc["goal"] + "\nAnswer:", "choices": [" " + doc["sol1"], " " + doc["sol2"]],
            "gold": int(label)}


CONVERTERS = {"hellaswag": convert_hellaswag, "arc": convert_arc, "piqa": convert_piqa}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("task", choices=sorted(CONVERTERS))
    ap.add_argument("input")
    ap.add_argument("--labels", help="PIQA labels file")
    ap.add_argument("-o", "--output", help="output file (default stdout)")
    a = ap.parse_args(argv)
    labels = None
    try:
        if a.labels:
            with open(a.labels, encoding="utf-8") as f:
                labels = [l.strip() for l in f if l.strip()]
        out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout
        n = 0
        with open(a.input, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                    if labels is not None and n >= len(labels):
                        raise ValueError("more examples than labels in %s" % a.labels)
                    ex = CONVERTERS[a.task](doc, labels[n] if labels is not None else None)
                    if not 0 <= ex["gold"] < len(ex["choices"]):
                        raise ValueError("gold %d outside the %d choices" % (ex["gold"], len(ex["choices"])))
                except (ValueError, KeyError, TypeError) as e:
                    kind = "missing field %s" % e if isinstance(e, KeyError) else str(e)
                    sys.exit("error: %s:%d: %s" % (a.input, lineno, kind))
                out.write(json.dumps(ex, ensure_ascii=False) + "\n")
                n += 1
        if labels is not None and n != len(labels):
            sys.exit("error: %s has %d labels for %d examples" % (a.labels, len(labels), n))
    except OSError as e:
        sys.exit("error: %s" % e)
    print("converted %d %s examples" % (n, a.task), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
