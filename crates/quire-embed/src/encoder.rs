//! quire's own BERT encoder forward pass (post-norm, absolute positions), one text at a time.
//!
//! Weights come from a `model.safetensors` file; linear layers are packed once at load into the
//! panel layout of [`gemm`](crate::kernels::gemm) (query, key and value as one matrix). A
//! forward pass runs in a [`Workspace`] of reused buffers, so embedding many texts allocates
//! only when a text is longer than any before it.
//!
//! Every step is a kernel with fixed arithmetic (see [`crate::kernels`]), and no step mixes rows
//! of different texts, so a text's output is the same bits alone, in a batch, on any thread and
//! on any [`KernelPath`].

use quire_core::spec::Precision;
use serde::Deserialize;

use crate::kernels::KernelPath;
use crate::kernels::aligned::Aligned;
use crate::kernels::attention::{HeadBuffers, attention};
use crate::kernels::gemm::{PackedB, gemm};
use crate::kernels::gemm_i8::{IntKernel, MAX_INT8_STEPS, PackedI8, gemm_i8};
use crate::kernels::math::{Activation, activate, add_layer_norm};
use crate::kernels::split::Parallelism;
use crate::weights::Weights;

/// The fields of a BERT `config.json` the encoder uses (others are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn two() -> usize {
    2
}

fn default_eps() -> f64 {
    1e-12
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A linear layer `y = x·Wᵀ + b`.
struct Linear {
    weight: Weight,
    bias: Vec<f32>,
}

enum Weight {
    F32(PackedB),
    Int8(PackedI8),
}

impl Linear {
    fn new(w: &[f32], bias: Vec<f32>, n: usize, k: usize, precision: Precision) -> Self {
        let weight = match precision {
            Precision::Fp32 => Weight::F32(PackedB::from_weight(w, n, k)),
            Precision::Int8 => Weight::Int8(PackedI8::from_weight(w, n, k)),
        };
        Self { weight, bias }
    }

    /// `c = a·Wᵀ + b` for `m` rows of `a` (stride `lda`) into `c` (stride `ldc`).
    // One argument more than BLAS's list: how many threads may share the product.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        path: KernelPath,
        par: Parallelism,
        a: &[f32],
        lda: usize,
        m: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        match &self.weight {
            Weight::F32(w) => gemm(path, par, a, lda, m, w, Some(&self.bias), c, ldc),
            Weight::Int8(w) => {
                let kernel = IntKernel::choose(path, w);
                gemm_i8(path, kernel, a, lda, m, w, &self.bias, c, ldc);
            }
        }
    }
}

struct Layer {
    qkv: Linear,
    out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    output_norm: Norm,
}

/// A loaded BERT encoder.
pub(crate) struct Encoder {
    hidden: usize,
    heads: usize,
    inter: usize,
    vocab: usize,
    types: usize,
    max_positions: usize,
    eps: f32,
    act: Activation,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// Reused buffers of a forward pass.
#[derive(Default)]
pub(crate) struct Workspace {
    x: Aligned<f32>,
    qkv: Aligned<f32>,
    context: Aligned<f32>,
    tmp: Aligned<f32>,
    inter: Aligned<f32>,
    /// One set per thread that may run attention heads.
    heads: [HeadBuffers; 2],
}

impl Encoder {
    /// Check `config` and take the weights it needs from `weights`.
    pub(crate) fn load(
        config: &BertConfig,
        weights: &Weights<'_>,
        precision: Precision,
    ) -> Result<Self, String> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let heads = config.num_attention_heads;
        if h == 0 || heads == 0 || h % heads != 0 {
            return Err(format!(
                "config.json: hidden_size {h} is not a multiple of num_attention_heads {heads}"
            ));
        }
        if precision == Precision::Int8 && h.max(i) > MAX_INT8_STEPS {
            return Err(format!(
                "config.json: hidden_size {h} / intermediate_size {i} exceed {MAX_INT8_STEPS}, \
                 beyond which int8 sums could overflow i32"
            ));
        }
        let act = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "relu" => Activation::Relu,
            other => {
                return Err(format!(
                    "config.json: hidden_act `{other}` is not supported"
                ));
            }
        };
        if let Some(kind) = config.position_embedding_type.as_deref()
            && kind != "absolute"
        {
            return Err(format!(
                "config.json: position_embedding_type `{kind}` is not supported"
            ));
        }
        let norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                gamma: weights.get(&format!("{name}.weight"), &[h])?,
                beta: weights.get(&format!("{name}.bias"), &[h])?,
            })
        };
        let linear = |name: &str, out: usize, inp: usize| -> Result<(Vec<f32>, Vec<f32>), String> {
            Ok((
                weights.get(&format!("{name}.weight"), &[out, inp])?,
                weights.get(&format!("{name}.bias"), &[out])?,
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                let (w, b) = linear(&format!("{p}.attention.self.{part}"), h, h)?;
                qkv_w.extend(w);
                qkv_bias.extend(b);
            }
            let (out_w, out_bias) = linear(&format!("{p}.attention.output.dense"), h, h)?;
            let (up_w, up_bias) = linear(&format!("{p}.intermediate.dense"), i, h)?;
            let (down_w, down_bias) = linear(&format!("{p}.output.dense"), h, i)?;
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, qkv_bias, 3 * h, h, precision),
                out: Linear::new(&out_w, out_bias, h, h, precision),
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: Linear::new(&up_w, up_bias, i, h, precision),
                down: Linear::new(&down_w, down_bias, h, i, precision),
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let (vocab, types, positions) = (
            config.vocab_size,
            config.type_vocab_size,
            config.max_position_embeddings,
        );
        Ok(Self {
            hidden: h,
            heads,
            inter: i,
            vocab,
            types,
            max_positions: positions,
            eps: config.layer_norm_eps as f32,
            act,
            word: weights.get("embeddings.word_embeddings.weight", &[vocab, h])?,
            position: weights.get("embeddings.position_embeddings.weight", &[positions, h])?,
            token_type: weights.get("embeddings.token_type_embeddings.weight", &[types, h])?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// Width of a token vector.
    pub(crate) fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The longest input the position table allows.
    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Run the encoder over one tokenized text; returns its token vectors (`ids.len()` rows of
    /// [`hidden_size`](Self::hidden_size)), which live in `ws` until its next use. `par` may
    /// split each step over two threads; the bits are the same either way.
    pub(crate) fn forward<'w>(
        &self,
        path: KernelPath,
        par: Parallelism,
        ids: &[u32],
        type_ids: &[u32],
        ws: &'w mut Workspace,
    ) -> Result<&'w [f32], String> {
        let (n, h) = (ids.len(), self.hidden);
        if n > self.max_positions {
            return Err(format!(
                "{n} tokens exceed {} positions",
                self.max_positions
            ));
        }
        self.embed(path, ids, type_ids, ws)?;
        size(&mut ws.qkv, n * 3 * h);
        size(&mut ws.context, n * h);
        size(&mut ws.tmp, n * h);
        size(&mut ws.inter, n * self.inter);
        for layer in &self.layers {
            self.layer(path, par, layer, n, ws);
        }
        Ok(&ws.x[..n * h])
    }

    fn embed(
        &self,
        path: KernelPath,
        ids: &[u32],
        type_ids: &[u32],
        ws: &mut Workspace,
    ) -> Result<(), String> {
        let h = self.hidden;
        size(&mut ws.x, ids.len() * h);
        for (t, (row, (&id, &ty))) in
            ws.x.chunks_exact_mut(h)
                .zip(ids.iter().zip(type_ids))
                .enumerate()
        {
            let (id, ty) = (id as usize, ty as usize);
            if id >= self.vocab || ty >= self.types {
                return Err(format!(
                    "token {id} (type {ty}) is outside the model's tables"
                ));
            }
            let word = &self.word[id * h..][..h];
            let position = &self.position[t * h..][..h];
            let token_type = &self.token_type[ty * h..][..h];
            for (((x, w), p), y) in row.iter_mut().zip(word).zip(position).zip(token_type) {
                *x = w + p + y;
            }
        }
        let norm = &self.embedding_norm;
        add_layer_norm(
            path,
            &mut ws.x[..ids.len() * h],
            &[],
            &norm.gamma,
            &norm.beta,
            self.eps,
        );
        Ok(())
    }

    fn layer(
        &self,
        path: KernelPath,
        par: Parallelism,
        layer: &Layer,
        n: usize,
        ws: &mut Workspace,
    ) {
        let h = self.hidden;
        layer.qkv.apply(path, par, &ws.x, h, n, &mut ws.qkv, 3 * h);
        let (qkv, heads) = (&ws.qkv, self.heads);
        attention(path, par, qkv, n, h, heads, &mut ws.context, &mut ws.heads);
        layer
            .out
            .apply(path, par, &ws.context, h, n, &mut ws.tmp, h);
        let norm = &layer.attention_norm;
        add_layer_norm(
            path,
            &mut ws.x[..n * h],
            &ws.tmp,
            &norm.gamma,
            &norm.beta,
            self.eps,
        );
        let i = self.inter;
        layer.up.apply(path, par, &ws.x, h, n, &mut ws.inter, i);
        activate(path, self.act, &mut ws.inter[..n * i]);
        layer.down.apply(path, par, &ws.inter, i, n, &mut ws.tmp, h);
        let norm = &layer.output_norm;
        add_layer_norm(
            path,
            &mut ws.x[..n * h],
            &ws.tmp,
            &norm.gamma,
            &norm.beta,
            self.eps,
        );
    }
}

/// Make `buf` hold at least `len` values (contents unspecified).
fn size(buf: &mut Aligned<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_refuses_layers_too_wide_for_exact_sums() {
        let empty = safetensors::serialize(
            std::iter::empty::<(&str, safetensors::tensor::TensorView<'_>)>(),
            None,
        )
        .expect("an empty safetensors file");
        let weights = Weights::parse(&empty).expect("parsed");
        let config = |inter: usize| BertConfig {
            vocab_size: 10,
            hidden_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: inter,
            hidden_act: "gelu".into(),
            max_position_embeddings: 16,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            position_embedding_type: None,
        };
        let wide = config(MAX_INT8_STEPS + 1);
        let err = Encoder::load(&wide, &weights, Precision::Int8)
            .err()
            .expect("refused");
        assert!(
            err.contains("intermediate_size") && err.contains("overflow"),
            "{err}"
        );
        // fp32 has no such limit (it goes on to find no tensors), nor has int8 at the limit.
        for (config, precision) in [
            (wide, Precision::Fp32),
            (config(MAX_INT8_STEPS), Precision::Int8),
        ] {
            let err = Encoder::load(&config, &weights, precision)
                .err()
                .expect("no tensors");
            assert!(err.contains("has no tensor"), "{err}");
        }
    }
}
