"""Golden fixtures for the CLIP model (core/clip/): a small random CLIP written from
../shared/reference/ratlip-reference.md §10 (pre-LN residual blocks, packed in-projection, QuickGELU, causal mask in
the text tower, EOT pooling at argmax(ids), projections), saved once in Hugging Face names and once in OpenAI names
(as safetensors), plus the outputs the C test compares: text and image embeddings, the residual stream after
chosen vision blocks, the prompt-token path GALIP's CLIP adapter uses, gradients w.r.t. the pixels and a prompt
token with the weights frozen, the GALIP input transform, and the contrastive loss with its gradients.
"""
import json
import math
import struct

import torch
import torch.nn.functional as F

from common import FIXTURE_DIR, Fixture, save_safetensors, seed

import os

torch.set_default_dtype(torch.float64)

CFG = dict(vision_width=24, vision_layers=3, vision_heads=3, patch=4, image=16,
           text_width=24, text_layers=2, text_heads=3, context=12, vocab=50, embed=16)


def make_weights():
    W = {}
    vw, tw, E = CFG["vision_width"], CFG["text_width"], CFG["embed"]
    g = CFG["image"] // CFG["patch"]

    def r(*shape, s=0.2):
        return torch.randn(*shape) * s

    W["visual.conv1.weight"] = r(vw, 3, CFG["patch"], CFG["patch"], s=0.05)
    W["visual.class_embedding"] = r(vw)
    W["visual.positional_embedding"] = r(g * g + 1, vw)
    W["visual.ln_pre.weight"] = 1 + r(vw, s=0.1)
    W["visual.ln_pre.bias"] = r(vw, s=0.1)
    towers = (("visual.transformer", vw, CFG["vision_layers"]), ("transformer", tw, CFG["text_layers"]))
    for tower, width, layers in towers:
        for i in range(layers):
            p = f"{tower}.resblocks.{i}."
            W[p + "attn.in_proj_weight"] = r(3 * width, width, s=1 / math.sqrt(width))
            W[p + "attn.in_proj_bias"] = r(3 * width, s=0.05)
            W[p + "attn.out_proj.weight"] = r(width, width, s=1 / math.sqrt(width))
            W[p + "attn.out_proj.bias"] = r(width, s=0.05)
            W[p + "ln_1.weight"] = 1 + r(width, s=0.1)
            W[p + "ln_1.bias"] = r(width, s=0.1)
            W[p + "ln_2.weight"] = 1 + r(width, s=0.1)
            W[p + "ln_2.bias"] = r(width, s=0.1)
            W[p + "mlp.c_fc.weight"] = r(4 * width, width, s=1 / math.sqrt(width))
            W[p + "mlp.c_fc.bias"] = r(4 * width, s=0.05)
            W[p + "mlp.c_proj.weight"] = r(width, 4 * width, s=1 / math.sqrt(4 * width))
            W[p + "mlp.c_proj.bias"] = r(width, s=0.05)
    W["visual.ln_post.weight"] = 1 + r(vw, s=0.1)
    W["visual.ln_post.bias"] = r(vw, s=0.1)
    W["visual.proj"] = r(vw, E, s=1 / math.sqrt(vw))
    W["token_embedding.weight"] = r(CFG["vocab"], tw, s=0.5)
    W["positional_embedding"] = r(CFG["context"], tw, s=0.1)
    W["ln_final.weight"] = 1 + r(tw, s=0.1)
    W["ln_final.bias"] = r(tw, s=0.1)
    W["text_projection"] = r(tw, E, s=1 / math.sqrt(tw))
    W["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    # OpenAI's released state dicts are fp16: round the vision tower to F16 and the text tower to BF16 so the
    # OpenAI-named file can store them at half size and the Hugging Face F32 file holds exactly the same values.
    for k in W:
        if k != "logit_scale":
            W[k] = W[k].to(torch.float16 if k.startswith("visual.") else torch.bfloat16).to(torch.float64)
    return W


def save_half(path, tensors):
    """safetensors with each tensor in its own torch dtype (F16, BF16 or F32): common.save_safetensors writes F32."""
    names = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = (t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def to_hf(W):
    """OpenAI names -> Hugging Face CLIPModel names (reference §10.8)."""
    H = {}
    for k, v in W.items():
        if k.startswith("visual.transformer.resblocks.") or k.startswith("transformer.resblocks."):
            vis = k.startswith("visual.")
            rest = k.split("resblocks.")[1]
            i, sub = rest.split(".", 1)
            pre = ("vision_model" if vis else "text_model") + f".encoder.layers.{i}."
            if sub == "attn.in_proj_weight" or sub == "attn.in_proj_bias":
                kind = "weight" if sub.endswith("weight") else "bias"
                q, kk, vv = v.chunk(3, dim=0)
                H[pre + f"self_attn.q_proj.{kind}"] = q
                H[pre + f"self_attn.k_proj.{kind}"] = kk
                H[pre + f"self_attn.v_proj.{kind}"] = vv
                continue
            sub = (sub.replace("attn.out_proj", "self_attn.out_proj").replace("ln_1", "layer_norm1")
                   .replace("ln_2", "layer_norm2").replace("mlp.c_fc", "mlp.fc1").replace("mlp.c_proj", "mlp.fc2"))
            H[pre + sub] = v
            continue
        m = {
            "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
            "visual.class_embedding": "vision_model.embeddings.class_embedding",
            "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
            "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
            "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
            "visual.ln_post.weight": "vision_model.post_layernorm.weight",
            "visual.ln_post.bias": "vision_model.post_layernorm.bias",
            "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
            "positional_embedding": "text_model.embeddings.position_embedding.weight",
            "ln_final.weight": "text_model.final_layer_norm.weight",
            "ln_final.bias": "text_model.final_layer_norm.bias",
            "logit_scale": "logit_scale",
        }
        if k == "visual.proj":
            H["visual_projection.weight"] = v.t().contiguous()
        elif k == "text_projection":
            H["text_projection.weight"] = v.t().contiguous()
        else:
            H[m[k]] = v
    H["text_model.embeddings.position_ids"] = torch.arange(CFG["context"]).unsqueeze(0)
    return H


def block(W, p, x, heads, causal):
    B, T, D = x.shape
    h = F.layer_norm(x, (D,), W[p + "ln_1.weight"], W[p + "ln_1.bias"], 1e-5)
    qkv = F.linear(h, W[p + "attn.in_proj_weight"], W[p + "attn.in_proj_bias"])
    q, k, v = qkv.chunk(3, dim=-1)
    sh = lambda t: t.reshape(B, T, heads, D // heads).transpose(1, 2)
    q, k, v = sh(q), sh(k), sh(v)
    a = q @ k.transpose(-1, -2) / math.sqrt(D // heads)
    if causal:
        a = a + torch.full((T, T), float("-inf")).triu(1)
    o = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
    x = x + F.linear(o, W[p + "attn.out_proj.weight"], W[p + "attn.out_proj.bias"])
    h = F.layer_norm(x, (D,), W[p + "ln_2.weight"], W[p + "ln_2.bias"], 1e-5)
    h = F.linear(h, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"])
    h = h * torch.sigmoid(1.702 * h)
    return x + F.linear(h, W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"])


def vision_embed(W, pixels):
    x = F.conv2d(pixels, W["visual.conv1.weight"], stride=CFG["patch"])
    B, D = x.shape[:2]
    x = x.reshape(B, D, -1).transpose(1, 2)
    cls = W["visual.class_embedding"].expand(B, 1, D)
    x = torch.cat([cls, x], 1) + W["visual.positional_embedding"]
    return F.layer_norm(x, (D,), W["visual.ln_pre.weight"], W["visual.ln_pre.bias"], 1e-5)


def vblock(W, i, x):
    return block(W, f"visual.transformer.resblocks.{i}.", x, CFG["vision_heads"], False)


def vision_head(W, x):
    D = x.shape[-1]
    return F.layer_norm(x[:, 0], (D,), W["visual.ln_post.weight"], W["visual.ln_post.bias"], 1e-5) @ W["visual.proj"]


def encode_image(W, pixels, taps=()):
    x = vision_embed(W, pixels)
    out = []
    for i in range(CFG["vision_layers"]):
        x = vblock(W, i, x)
        if i in taps:
            out.append(x)
    return vision_head(W, x), out


def encode_text(W, ids):
    x = W["token_embedding.weight"][ids] + W["positional_embedding"][: ids.shape[1]]
    for i in range(CFG["text_layers"]):
        x = block(W, f"transformer.resblocks.{i}.", x, CFG["text_heads"], True)
    D = x.shape[-1]
    x = F.layer_norm(x, (D,), W["ln_final.weight"], W["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ W["text_projection"]


def prompted_mapper(W, Fb, prompts, prompt_blocks):
    """GALIP's CLIP mapper (reference §2.4): the bridge feature Fb [B, D, g, g] as patch tokens after the class token,
    positions and ln_pre; vision block i sees prompt j as an extra token when prompt_blocks[j] == i (dropped after
    it); the patch tokens of the last block as [B, D, g, g]."""
    Bn, D, g = Fb.shape[0], Fb.shape[1], Fb.shape[2]
    x = Fb.reshape(Bn, D, g * g).transpose(1, 2)
    x = torch.cat([W["visual.class_embedding"].expand(Bn, 1, D), x], 1) + W["visual.positional_embedding"]
    x = F.layer_norm(x, (D,), W["visual.ln_pre.weight"], W["visual.ln_pre.bias"], 1e-5)
    T = x.shape[1]
    for i in range(CFG["vision_layers"]):
        if i in prompt_blocks:
            j = prompt_blocks.index(i)
            x = vblock(W, i, torch.cat([x, prompts[:, j:j + 1]], 1))[:, :T]
        else:
            x = vblock(W, i, x)
    return x[:, 1:].transpose(1, 2).reshape(Bn, D, g, g)


def galip_transform(x, size):
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    u = x * 0.5 + 0.5
    u = F.interpolate(u, size=(size, size))  # legacy nearest
    v = (u + 1) * 0.5
    return (v - mean) / std


def bicubic_aa(x, oh, ow):
    return F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False, antialias=True)


def standard_transform(x, size):
    """torchvision Resize(size, bicubic, antialias) of the shorter side, CenterCrop(size), CLIP mean/std."""
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    u = x * 0.5 + 0.5
    H, W = u.shape[2:]
    oh, ow = (size, int(size * W / H)) if H <= W else (int(size * H / W), size)
    u = bicubic_aa(u, oh, ow)
    top, left = int(round((oh - size) / 2.0)), int(round((ow - size) / 2.0))
    u = u[:, :, top:top + size, left:left + size]
    return (u - mean) / std


def contrastive(img, txt, logit_scale):
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    logits = logit_scale.clamp(max=math.log(100)).exp() * img @ txt.t()
    labels = torch.arange(img.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def main():
    seed(0)
    torch.set_default_dtype(torch.float64)
    W = make_weights()
    Wf = {k: v.float() for k, v in W.items()}
    save_safetensors(os.path.join(FIXTURE_DIR, "clip_small_hf.safetensors"), to_hf(Wf))
    save_half(os.path.join(FIXTURE_DIR, "clip_small_openai.safetensors"),
              {k: (v if k == "logit_scale" else v.to(torch.float16 if k.startswith("visual.") else torch.bfloat16))
               for k, v in Wf.items()})
    W = {k: v.float().double() for k, v in W.items()}
    fx = Fixture("clip")
    B = 3
    ids = torch.zeros(B, CFG["context"], dtype=torch.long)
    lens = [5, 12, 3]
    for b, n in enumerate(lens):
        body = torch.randint(1, CFG["vocab"] - 2, (n,))
        body[0] = CFG["vocab"] - 2  # sot
        body[-1] = CFG["vocab"] - 1  # eot: the largest id, so argmax pools it
        ids[b, :n] = body
    pixels = torch.randn(B, 3, CFG["image"], CFG["image"]).requires_grad_(True)
    img, taps = encode_image(W, pixels, taps=(0, 2))
    txt = encode_text(W, ids)
    R = torch.rand(img.shape) * 2 - 1
    (gpix,) = torch.autograd.grad(img, pixels, R)
    # the prompt path: append a token before block 1, drop it after, run blocks 1..2 (GALIP's CLIP_Mapper shape)
    prompt = torch.randn(B, 1, CFG["vision_width"]).requires_grad_(True)
    x = vision_embed(W, pixels.detach())
    x = vblock(W, 0, x)
    x = vblock(W, 1, torch.cat([x, prompt], 1))[:, :-1]
    prompt_out = vblock(W, 2, x)
    Rp = torch.rand(prompt_out.shape) * 2 - 1
    (gprompt,) = torch.autograd.grad(prompt_out, prompt, Rp)
    raw = (torch.rand(1, 3, 18, 18) * 2 - 1).requires_grad_(True)
    tr = galip_transform(raw, CFG["image"])
    Rt = torch.rand(tr.shape) * 2 - 1
    (graw,) = torch.autograd.grad(tr, raw, Rt)
    # the standard transform: downscale of a square image, and upscale + centre crop of a non-square one
    std_sq = standard_transform(raw, CFG["image"])
    (graw_std,) = torch.autograd.grad(std_sq, raw, Rt)
    raw2 = (torch.rand(1, 3, 10, 12) * 2 - 1).requires_grad_(True)
    std_rect = standard_transform(raw2, CFG["image"])
    Rt2 = torch.rand(std_rect.shape) * 2 - 1
    (graw2,) = torch.autograd.grad(std_rect, raw2, Rt2)
    # trainable weights (pretraining): gradients of <R, image> and <Rt, text> w.r.t. chosen parameters
    Wg = {k: v.clone().requires_grad_(True) for k, v in W.items()}
    vis_names = ["visual.conv1.weight", "visual.class_embedding", "visual.transformer.resblocks.1.attn.in_proj_weight",
                 "visual.transformer.resblocks.2.mlp.c_fc.bias", "visual.ln_post.weight", "visual.proj"]
    txt_names = ["token_embedding.weight", "positional_embedding", "transformer.resblocks.0.attn.in_proj_bias",
                 "transformer.resblocks.1.mlp.c_proj.bias", "ln_final.bias", "text_projection"]
    gv = torch.autograd.grad(encode_image(Wg, pixels.detach())[0], [Wg[k] for k in vis_names], R)
    Rtxt = torch.rand(txt.shape) * 2 - 1
    gt_ = torch.autograd.grad(encode_text(Wg, ids), [Wg[k] for k in txt_names], Rtxt)
    pgrads = {f"pgrad.{k}": g for k, g in zip(vis_names + txt_names, list(gv) + list(gt_))}
    # a word tokenizer's end id is not the largest: pool at the first position holding eot_id
    eot_id = 7
    ids_w = torch.randint(8, CFG["vocab"], (B, CFG["context"]))
    ends = [4, 11, 0]
    for b, n in enumerate(ends):
        ids_w[b, n] = eot_id
    ids_w[1, 2] = CFG["vocab"] - 1
    x = W["token_embedding.weight"][ids_w] + W["positional_embedding"]
    for i in range(CFG["text_layers"]):
        x = block(W, f"transformer.resblocks.{i}.", x, CFG["text_heads"], True)
    x = F.layer_norm(x, (x.shape[-1],), W["ln_final.weight"], W["ln_final.bias"], 1e-5)
    txt_eot = x[torch.arange(B), torch.tensor(ends)] @ W["text_projection"]
    logit_scale = W["logit_scale"].clone().requires_grad_(True)
    ie = img.detach().clone().requires_grad_(True)
    te = txt.detach().clone().requires_grad_(True)
    loss = contrastive(ie, te, logit_scale)
    gi, gt, gl = torch.autograd.grad(loss, [ie, te, logit_scale])
    fx.case(name="clip", ids=ids, pixels=pixels.detach(), image_embed=img.detach(), text_embed=txt.detach(),
            tap0=taps[0].detach(), tap2=taps[1].detach(), R=R, grad_pixels=gpix, prompt=prompt.detach(),
            prompt_out=prompt_out.detach(), Rp=Rp, grad_prompt=gprompt, raw=raw.detach(), transformed=tr.detach(),
            Rt=Rt, grad_raw=graw, standard=std_sq.detach(), grad_raw_standard=graw_std, raw2=raw2.detach(),
            standard2=std_rect.detach(), Rt2=Rt2, grad_raw2=graw2, Rtxt=Rtxt, ids_w=ids_w, text_embed_eot=txt_eot,
            loss=loss.detach(), grad_img=gi, grad_txt=gt, grad_logit_scale=gl, eot_id=eot_id, **pgrads,
            **{k: v for k, v in CFG.items()})
    fx.save()


if __name__ == "__main__":
    main()
