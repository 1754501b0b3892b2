#!/usr/bin/python3
"""Golden fixture for ratfw's text module (core/text/): CLIP byte-level BPE ids and a word-level vocabulary.

Written from the specification in reference/ratlip-reference.md §10.5 and docs/tokenizer.md (not from
openai/CLIP's code). Cleaning is the subset ratfw documents in core/include/ratfw/text.h: HTML unescape twice
(numeric references plus a fixed table of named ones), NFC, whitespace collapse, strip, lower case; ftfy is not
used. Pre-tokenisation uses Debian's python3-regex for \\p{L} / \\p{N}.

Input: tests/fixtures/tokenizer_captions.txt (one caption per line; escapes \\n \\t \\r \\\\ \\uXXXX \\UXXXXXXXX).
Vocabulary: $RATFW_CLIP_VOCAB or tests/fixtures/clip/bpe_simple_vocab_16e6.txt.gz (shipped; openai/CLIP's file, MIT).
Output: tests/fixtures/tokenizer.safetensors (cases in the metadata, ids as I32 tensors).
"""
import gzip
import html
import os
import sys
import unicodedata
from collections import Counter
from html.entities import html5

import regex
import torch

from common import FIXTURE_DIR, Fixture

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
VOCAB = os.environ.get("RATFW_CLIP_VOCAB") or os.path.join(REPO, "tests", "fixtures", "clip",
                                                             "bpe_simple_vocab_16e6.txt.gz")
CONTEXT = 77
N_MERGES = 49152 - 256 - 2

# ---- cleaning -------------------------------------------------------------------------------------------------

# Named references ratfw knows: every HTML 5 name valid without ';' (legacy), plus these (';' required).
EXTRA_NAMES = ("apos OElig oelig Scaron scaron Yuml fnof circ tilde ensp emsp thinsp zwnj zwj lrm rlm ndash mdash "
               "lsquo rsquo sbquo ldquo rdquo bdquo dagger Dagger bull hellip permil prime Prime lsaquo rsaquo oline "
               "euro trade larr uarr rarr darr harr minus infin ne le ge spades clubs hearts diams").split()
LEGACY = {k: v for k, v in html5.items() if not k.endswith(";")}
NAMED = dict(LEGACY)
NAMED.update({k: html5[k + ";"] for k in EXTRA_NAMES})

CP1252 = {0x80 + i: c for i, c in enumerate("\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039"
                                                 "\u0152\x8d\u017d\x8f\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014"
                                                 "\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178")}
REF = regex.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _numeric(num):
    if num == 0:
        return "\ufffd"
    if num == 0x0D:
        return "\r"
    if num in CP1252:
        return CP1252[num]
    if 0xD800 <= num <= 0xDFFF or num > 0x10FFFF:
        return "\ufffd"
    if 1 <= num <= 8 or num == 0xB or 0xE <= num <= 0x1F or 0x7F <= num <= 0x9F or 0xFDD0 <= num <= 0xFDEF \
            or (num & 0xFFFE) == 0xFFFE:
        return ""
    return chr(num)


def _ref(m):
    s = m.group(1)
    if s[0] == "#":
        digits = s[1:].rstrip(";")
        return _numeric(int(digits[1:], 16) if digits[0] in "xX" else int(digits))
    if s.endswith(";") and s[:-1] in NAMED:
        return NAMED[s[:-1]]
    if s in LEGACY:
        return LEGACY[s]
    for x in range(len(s) - 1, 1, -1):
        if s[:x] in LEGACY:
            return LEGACY[s[:x]] + s[x:]
    return "&" + s


def unescape(s):
    return REF.sub(_ref, s)


def clean(text):
    t = unescape(unescape(text))
    t = unicodedata.normalize("NFC", t)
    t = regex.sub(r"\s+", " ", t).strip()
    return t.lower()


PAT = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+",
                    regex.IGNORECASE)


def pieces(cleaned):
    return PAT.findall(cleaned)

# ---- BPE --------------------------------------------------------------------------------------------------------


def byte_chars():
    """byte -> character; list of bytes in vocabulary order."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    order = printable + [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    for i, b in enumerate(b for b in range(256) if b not in printable):
        table[b] = chr(256 + i)
    return table, order


class Bpe:
    def __init__(self, path):
        lines = gzip.open(path).read().decode("utf-8").split("\n")[1:1 + N_MERGES]
        merges = [tuple(l.split(" ")) for l in lines]
        self.chars, order = byte_chars()
        self.unchar = {c: b for b, c in self.chars.items()}
        vocab = [self.chars[b] for b in order] + [self.chars[b] + "</w>" for b in order]
        vocab += [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.ids = {t: i for i, t in enumerate(vocab)}
        self.tokens = vocab
        self.rank = {m: r for r, m in enumerate(merges)}
        self.sot, self.eot = self.ids["<|startoftext|>"], self.ids["<|endoftext|>"]

    def piece(self, p):
        if p in ("<|startoftext|>", "<|endoftext|>"):
            return [self.ids[p]]
        sym = [self.chars[b] for b in p.encode("utf-8")]
        sym[-1] += "</w>"
        while len(sym) > 1:
            pairs = [(self.rank.get((sym[i], sym[i + 1]), None), i) for i in range(len(sym) - 1)]
            ranked = [r for r, _ in pairs if r is not None]
            if not ranked:
                break
            a, b = self._pair(min(ranked), sym)
            out, i = [], 0
            while i < len(sym):
                if i + 1 < len(sym) and sym[i] == a and sym[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(sym[i])
                    i += 1
            sym = out
        return [self.ids[s] for s in sym]

    def _pair(self, rank, sym):
        for i in range(len(sym) - 1):
            if self.rank.get((sym[i], sym[i + 1])) == rank:
                return sym[i], sym[i + 1]
        raise AssertionError

    def tokenize(self, text):
        return [i for p in pieces(clean(text)) for i in self.piece(p)]

    def decode(self, ids):
        out = []
        for i in ids:
            if i == self.eot:
                break
            if i != self.sot:
                out.append(self.tokens[i])
        data = bytes(self.unchar[c] for c in "".join(out))
        return data.decode("utf-8", errors="replace").replace("</w>", " ").rstrip(" ")


def encode(raw, sot, eot, pad, context):
    ids = [sot] + raw[:context - 2] + [eot]
    return ids + [pad] * (context - len(ids)), len(ids)

# ---- captions ---------------------------------------------------------------------------------------------------


def read_captions(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f.read().split("\n")[:-1]:
            s, i = [], 0
            while i < len(line):
                c = line[i]
                if c == "\\" and i + 1 < len(line):
                    e = line[i + 1]
                    if e in "ntr\\":
                        s.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[e])
                        i += 2
                        continue
                    if e in "uU":
                        w = 4 if e == "u" else 8
                        s.append(chr(int(line[i + 2:i + 2 + w], 16)))
                        i += 2 + w
                        continue
                s.append(c)
                i += 1
            out.append("".join(s))
    return out


def main():
    captions = read_captions(os.path.join(FIXTURE_DIR, "tokenizer_captions.txt"))
    bpe = Bpe(VOCAB)
    fx = Fixture("tokenizer")
    n_trunc = 0
    for cap in captions:
        # the subset must agree with Python's full html.unescape on these captions (only known names used)
        full = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", html.unescape(html.unescape(cap)))).strip().lower()
        assert clean(cap) == full, (cap, clean(cap), full)
        raw = bpe.tokenize(cap)
        ids, n = encode(raw, bpe.sot, bpe.eot, 0, CONTEXT)
        n_trunc += len(raw) + 2 > CONTEXT
        fx.case(kind="bpe", caption=cap, clean=clean(cap), pieces=pieces(clean(cap)), n=n, n_raw=len(raw),
                decoded=bpe.decode(ids), ids=torch.tensor(ids, dtype=torch.int32))

    # word level: 40 most frequent pieces over all captions, context 16
    max_words, context = 40, 16
    counts = Counter(p for cap in captions for p in pieces(clean(cap)))
    words = ["<pad>", "<sot>", "<eot>", "<unk>"] + [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                                                   [:max_words]]
    index = {w: i for i, w in enumerate(words)}
    fx.case(kind="words_vocab", max_words=max_words, context=context, words=words)
    for cap in captions:
        raw = [index.get(p, 3) for p in pieces(clean(cap))]
        ids, n = encode(raw, 1, 2, 0, context)
        fx.case(kind="words", caption=cap, n=n, ids=torch.tensor(ids, dtype=torch.int32))
    fx.save()
    print(f"{len(captions)} captions, {n_trunc} truncated to {CONTEXT}; word vocabulary {len(words)}")


if __name__ == "__main__":
    sys.exit(main())
