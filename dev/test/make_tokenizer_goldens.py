#!/usr/bin/env python3
"""Writes dev/test/data/tokenizer_golden.jsonl: expected GPT-2 token ids for every text of
dev/test/data/tokenizer_corpus.jsonl, from two independent tokenizers built from the LOCAL vocabulary files
(dev/data/gpt2-vocab.json, dev/data/gpt2-merges.txt; no network):

  * tiktoken   — tiktoken.Encoding with the GPT-2 pattern and ranks read from the files; encode_ordinary
                 (so "<|endoftext|>" in text is ordinary text). THIS IS THE GOLDEN.
  * tokenizers — HF's Rust BPE model from the same files with the ByteLevel pre-tokenizer (no special tokens).

Both must agree on every text except the ones listed in KNOWN_DISAGREEMENTS (with the reason); any other
disagreement aborts. A third, informational reference re-implements the seed's Python tokenizer (Megatron
GPT2BPETokenizer / HF slow: the `regex` module + rank-ordered merges) and its disagreements are only reported.

    pip install tiktoken tokenizers regex           # PyPI, only for this one-off generator
    python3 dev/test/make_tokenizer_goldens.py                                  # corpus -> goldens
    python3 dev/test/make_tokenizer_goldens.py --rebuild-corpus ../shared/data/corpus   # rewrite the corpus first
"""
import argparse
import gzip
import json
import os
import random
import sys

import regex
import tiktoken
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(ROOT, "dev/data/gpt2-vocab.json")
MERGES = os.path.join(ROOT, "dev/data/gpt2-merges.txt")
CORPUS = os.path.join(ROOT, "dev/test/data/tokenizer_corpus.jsonl")
GOLDEN = os.path.join(ROOT, "dev/test/data/tokenizer_golden.jsonl")
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# Characters whose class differs between Unicode versions: tiktoken 0.14 (Rust regex) has Unicode 16.0, the
# `regex` module 17.0. The corpus contains them, but probing every ASCII letter/digit on either side found no
# GPT-2 merge across such a character's edges, so the version changes no ids here (the C++ test checks the
# classes themselves, and dev/data/gen_unicode_data.py checks the whole table against tiktoken).
TODHRI_A = "\U000105C0"    # Todhri letter, new in Unicode 16.0 (\p{L} for tiktoken)
GARAY_ZERO = "\U00010D40"  # Garay digit zero, new in Unicode 16.0 (\p{N} for tiktoken)
SIDETIC_A = "\U00010940"   # Sidetic letter, new in Unicode 17.0 (unassigned = "other" for tiktoken)
# text -> why HF tokenizers disagrees with tiktoken there (tiktoken stays the golden). With tiktoken 0.14.0 and
# tokenizers 0.23.3 there is none: both agree on every corpus text, \x1c..\x1f and U+0085 included.
KNOWN_DISAGREEMENTS = {}


def byte_to_unicode():
    """GPT-2's byte -> character table (seed_spec section 6)."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def load_vocab():
    with open(VOCAB, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(MERGES, encoding="utf-8") as f:
        merges = [tuple(line.split(" ")) for line in f.read().split("\n")[1:-1]]
    assert len(vocab) == 50257 and len(merges) == 50000
    return vocab, merges


def make_tiktoken(vocab):
    inv = {c: b for b, c in byte_to_unicode().items()}
    ranks = {bytes(inv[c] for c in tok): i for tok, i in vocab.items() if tok != "<|endoftext|>"}
    return tiktoken.Encoding(name="gpt2_local", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def make_hf():
    tok = Tokenizer(models.BPE.from_file(VOCAB, MERGES))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


class SeedStyleReference:
    """The seed's algorithm (seed_spec section 6) written out: regex split, byte table, rank-ordered merges."""

    def __init__(self, vocab, merges):
        self.vocab, self.rank = vocab, {m: i for i, m in enumerate(merges)}
        self.b2u, self.pat, self.cache = byte_to_unicode(), regex.compile(GPT2_PATTERN), {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        syms = list(word)
        while len(syms) > 1:
            pairs = [(self.rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
            best = min(pairs)[0]
            if best == 1 << 30:
                break
            a, b = syms[min(pairs)[1]], syms[min(pairs)[1] + 1]
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == a and syms[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        self.cache[word] = [self.vocab[s] for s in syms]
        return self.cache[word]

    def encode(self, text):
        ids = []
        for piece in self.pat.findall(text):
            ids += self.bpe("".join(self.b2u[b] for b in piece.encode("utf-8")))
        return ids


# ---------------------------------------------------------------------------------------------------------
# Corpus: hand-written edge cases + seeded random strings + snippets of the shared English corpus.

def handwritten():
    t = []
    t += ["", "a", " ", "  ", "\n", "Hello world", "Hello, world! How are you today?",
          "The quick brown fox jumps over the lazy dog.", "  leading spaces", "trailing spaces   ",
          "multiple   spaces   between   words", "Mixed CASE Words ALLCAPS lowercase CamelCase snake_case",
          "It was the best of times, it was the worst of times.\nIt was the age of wisdom...",
          "e.g. i.e. etc. Dr. Mr. Mrs. U.S.A. 3.14159 1,000,000 $5.99 50% #hashtag @user",
          "email: someone@example.com, url: https://www.example.org/path?q=1&r=2#frag"]
    # Contractions: the regex only knows lower-case 's 't 're 've 'm 'll 'd, and takes them before anything else.
    t += ["it's", "It's", "IT'S", "don't", "DON'T", "we've", "WE'VE", "they're", "I'm", "I'M", "you'll",
          "YOU'LL", "you'LL", "he'd", "He'D", "y'all", "rock 'n' roll", "'s", "'", "''", "'''s", "''s",
          " 's", " 'sup", "'sup", "'tis", "'ll've", "'re'd", "'x", "'S", "'Ve", "the dog's bone", "dogs' bones",
          "don\u2019t (curly apostrophe)", "it''s", "'s's's", "a's b't c're d've e'm f'll g'd", "'\n's",
          "Rock'n'Roll", "'1", "' s", "O'Neil's 'quote'", "!'s", " ?'ll", "5's", "\u00e9'd"]
    # Multilingual.
    t += ["\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002",
          "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
          "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! \u0647\u0630\u0627 \u0646\u0635 \u0639\u0631\u0628\u064a.",
          "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e, \u092f\u0939 \u0939\u093f\u0902\u0926\u0940 \u0939\u0948\u0964",
          "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0440\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442.",
          "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5! \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac.",
          "\uc548\ub155\ud558\uc138\uc694, \uc138\uacc4! \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.",
          "Cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade, \u00fcber Stra\u00dfe, ni\u00f1o, S\u00e3o Paulo, \u0141\u00f3d\u017a, \u00c5ngstr\u00f6m",
          "NFD: e\u0301 n\u0303 a\u0308 (combining marks are neither letters nor numbers)",
          "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
          "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u", "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
          "\u0540\u0561\u0575\u0565\u0580\u0565\u0576", "\u12a0\u121b\u122d\u129b", "\u0ba4\u0bae\u0bbf\u0bb4\u0bcd",
          "English mixed with \u4e2d\u6587 and \u65e5\u672c\u8a9e and \u0639\u0631\u0628\u064a in one line.",
          "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U0001d7d8\U0001d7d9 (math letters/digits)",
          "\U00010330\U00010331\U00010332 Gothic", "\u0130stanbul \u0131s\u0131k", "\u01c5 titlecase \u1e9e \u00df"]
    # Emoji (symbols are "other"; ZWJ and variation selectors are format/mark characters, also "other").
    t += ["\U0001f44d", "\U0001f44d\U0001f3fd", "Great job \U0001f44d\U0001f3fd!",
          "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
          "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f3f4\u200d\u2620\ufe0f",
          "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5\U0001f1e9\U0001f1ea flags", "1\ufe0f\u20e3 #\ufe0f\u20e3 keycaps",
          "\u2764\ufe0f\u2764\U0001f525 \U0001f602\U0001f602\U0001f602", "a\U0001f600b \U0001f600 c",
          "\U0001f9d1\U0001f3ff\u200d\U0001f91d\u200d\U0001f9d1\U0001f3fb"]
    # Numbers in various scripts (Nd, Nl, No are all \p{N}; CJK numerals are letters).
    t += ["0123456789", "3.14159265358979", "2024-05-09T12:34:56Z", "+1 (555) 123-4567", "1e-10 0x1F 0b1010",
          "\u0661\u0662\u0663\u0664\u0665", "\u0967\u0968\u0969 \u09e7\u09e8\u09e9 \u0e51\u0e52\u0e53",
          "\u4e00\u4e8c\u4e09\u56db", "\u2460\u2461\u2462 \u216b \u2167", "\u00bd \u00bc \u00b2\u00b3 \u2070",
          "\uff11\uff12\uff13 \uff41\uff42\uff43", "v2.0.1-rc3", "abc123def 123abc", " 42 is the answer",
          "12345678901234567890123456789012345678901234567890"]
    # Whitespace of every kind (White_Space set only: U+001C..U+001F, U+200B and U+FEFF are NOT \s).
    t += ["a\tb", "a \tb", "\t\tindented", "line1\r\nline2\r\n", "a\rb", "a\n\nb", "a\n\n\n b", "a \n b",
          "a  \nb", " \n ", "\n\n\n", "\t \t", "end with newline\n", "end with spaces and newline  \n",
          "a\u00a0b", "\u00a0a", "a\u00a0\u00a0b", "\u3000\u5168\u89d2\u3000space\u3000", "a\u2028b\u2029c",
          "a\x0bb\x0cc", "a\x1cb\x1dc\x1ed\x1fe", " \x1c x\x1f ", "a\x85b", "\x85 a", "a\u1680b",
          "".join(chr(c) for c in range(0x2000, 0x200B)) + "x", "a\u202fb\u205fc", "a\u200bb \u200b c",
          "\ufeffBOM at start", "x \t\n\r\x0b\x0c\x85\xa0\u2028 y", "   \t  ", "a" + " " * 7 + "b",
          "a\n" + " " * 4 + "b", "\n \n \n", " \u00a0a", "\u00a0 a", "\t!", " \t!", "  !", "x  123", "x \u0661"]
    # Code.
    t += ["def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n",
          "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
          "for (int i = 0; i < n; ++i) { a[i] += b[i] * c; }",
          "{\"key\": [1, 2.5, null, true], \"nested\": {\"s\": \"\\u00e9\"}}",
          "<div class=\"x\"><p>Hello &amp; welcome</p></div>", "$ ls -la | grep '.txt' && echo done >> log",
          "SELECT * FROM users WHERE name = 'O''Brien';", "x=>x+1; a!==b; c||=d; e?.f ?? g",
          "    if x:\n        y = 1\n    else:\n        y = 2\n", "```python\nimport numpy as np\n```"]
    # Special-token text is ordinary text here.
    t += ["<|endoftext|>", "a<|endoftext|>b", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
          "end of doc.<|endoftext|>Start of next", "<|endoftext", "[PAD] <|im_start|>"]
    # Odd code points: controls, C1, private use, noncharacters, the replacement character, U+10FFFF.
    t += ["\x00", "a\x00b", "\x01\x02\x03\x7f", "\x80\x9f", "\ue000\uf8ff", "\ufffe\uffff", "\ufffd",
          "\U0010ffff", "\U000f0000 x"]
    # Characters new in Unicode 16.0 and 17.0 (see TODHRI_A).
    t += ["x" + TODHRI_A * 3 + " " + TODHRI_A + "!", "7" + GARAY_ZERO * 2 + " " + GARAY_ZERO + "a",
          "s" + SIDETIC_A + "a " + SIDETIC_A]
    # Long runs (exercise the heap-based merge for long pieces and long whitespace).
    zh = ("\u81ea\u7136\u8bed\u8a00\u5904\u7406\u662f\u8ba1\u7b97\u673a\u79d1\u5b66\u548c\u4eba\u5de5"
          "\u667a\u80fd\u9886\u57df\u4e2d\u7684\u4e00\u4e2a\u91cd\u8981\u65b9\u5411")
    t += [" " * 5000, "a" * 3000, "ab" * 1000, "\n" * 1000, "1234567890" * 100, "=" * 2000, "!?" * 500,
          zh * 40, "x" + " " * 300 + "y", "\t" * 100 + "z", "ha" * 300 + "!" * 50,
          "Supercalifragilisticexpialidocious" * 20,
          "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2Nzg5MA==" * 10,
          "\u0645\u0631\u062d\u0628\u0627" * 200, "\U0001f600" * 300]
    return t


def random_texts(count, seed):
    alphabet = [" ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "\x0b", "\x1c", "\x85", "\u2028",
                "a", "b", "Z", "e", "s", "t", "l", "r", "v", "d", "m", "S", "L", "\u00e9", "\u00df", "\u4e2d",
                "\u0416", "1", "9", "\u0663", "\u00bd", "\u2167", "'", "'", "'", "!", ".", ",", "-", "\"",
                "\u0301", "\u200d", "\U0001f600", "\U0001f3fd", "<", "|", "\u2019", "\U0001d518", "_", "#"]
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))) for _ in range(count)]


def corpus_snippets(corpus_dir):
    out = []
    def docs(name):
        with gzip.open(os.path.join(corpus_dir, name), "rt", encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f]
    c4, wiki, books = docs("c4_train.jsonl.gz"), docs("wikipedia_val.jsonl.gz"), docs("books_val.jsonl.gz")
    out += [d for d in c4[:40] if len(d) < 3000][:10]   # whole short web documents
    out += [w[:2500] for w in wiki[:4]] + [b[5000:7500] for b in books[:3]]
    # The web documents richest in non-ASCII text (typography, foreign words, symbols).
    rich = sorted(c4 + wiki, key=lambda d: -sum(ord(c) > 127 for c in d[:4000]) / (1 + len(d[:4000])))
    out += [d[:2500] for d in rich[:8]]
    return out


def rebuild_corpus(corpus_dir):
    texts = handwritten() + random_texts(80, 1234) + corpus_snippets(corpus_dir)
    os.makedirs(os.path.dirname(CORPUS), exist_ok=True)
    with open(CORPUS, "w", encoding="ascii") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")  # ASCII with \u escapes (surrogate pairs for planes 1-16)
    print(f"wrote {CORPUS}: {len(texts)} texts, {os.path.getsize(CORPUS)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebuild-corpus", metavar="SHARED_CORPUS_DIR")
    args = ap.parse_args()
    if args.rebuild_corpus:
        rebuild_corpus(args.rebuild_corpus)

    vocab, merges = load_vocab()
    tk, hf, seed_ref = make_tiktoken(vocab), make_hf(), SeedStyleReference(vocab, merges)
    with open(CORPUS, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    unexpected = 0
    with open(GOLDEN, "w", encoding="ascii") as f:
        for i, text in enumerate(texts):
            ids = tk.encode_ordinary(text)
            hf_ids = hf.encode(text).ids
            ref_ids = seed_ref.encode(text)
            assert tk.decode_bytes(ids) == text.encode("utf-8"), f"text {i}: tiktoken round trip failed"
            if hf_ids != ids:
                if text in KNOWN_DISAGREEMENTS:
                    print(f"text {i}: HF tokenizers differs from tiktoken as expected: {KNOWN_DISAGREEMENTS[text]}")
                else:
                    unexpected += 1
                    print(f"text {i} {text[:60]!r}: UNEXPECTED disagreement\n  tiktoken {ids[:40]}\n  hf       {hf_ids[:40]}")
            if ref_ids != ids:
                print(f"text {i} {text[:40]!r}: seed-style `regex` reference differs from tiktoken (informational)")
            f.write(json.dumps({"text": text, "ids": ids}) + "\n")
    print(f"tiktoken {tiktoken.__version__}, tokenizers {tokenizers.__version__}, regex {regex.__version__}")
    print(f"wrote {GOLDEN}: {len(texts)} texts")
    if unexpected:
        sys.exit(f"{unexpected} unexpected tiktoken/HF disagreements")


if __name__ == "__main__":
    main()
