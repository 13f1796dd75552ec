//! A BERT encoder with mean pooling, the architecture of all-MiniLM-L6-v2,
//! written on candle's tensors and layers.
//!
//! The forward pass is the one sentence-transformers runs for this model:
//! word + position + token-type embeddings, layer norm; per layer, multi-head
//! self-attention with the padding masked out, residual and layer norm, a GELU
//! (erf) feed-forward, residual and layer norm; then the mean of the token
//! vectors under the attention mask, scaled to unit length. Dropout is absent
//! (inference). `candle-transformers` has a BERT too, but it is one crate with
//! every model family in it; docs/decisions.md says why these hundred lines
//! are ours.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use crate::ProviderError;

/// The shape of the encoder, read from the model's `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct BertConfig {
    /// Width of every token vector (384 for MiniLM-L6).
    pub hidden_size: usize,
    num_attention_heads: usize,
    num_hidden_layers: usize,
    intermediate_size: usize,
    /// Longest input the position table covers.
    pub max_position_embeddings: usize,
    layer_norm_eps: f64,
    vocab_size: usize,
    type_vocab_size: usize,
    hidden_act: String,
}

/// The loaded encoder.
pub(super) struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    device: Device,
}

/// One transformer layer.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A candle failure while loading or running the model.
fn model_error(what: &str) -> impl Fn(candle_core::Error) -> ProviderError + '_ {
    move |e| ProviderError::Provider(format!("local model: {what}: {e}"))
}

impl Bert {
    /// Loads `config.json` and `model.safetensors` from `dir` onto the CPU.
    pub fn load(dir: &Path) -> Result<(Self, BertConfig), ProviderError> {
        let config: BertConfig = super::files::read_json(dir, "config.json")?;
        if config.hidden_act != "gelu"
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(ProviderError::Provider(format!(
                "{}: only BERT encoders with GELU and a hidden size divisible by the head count are supported",
                dir.join("config.json").display()
            )));
        }
        let device = Device::Cpu;
        let weights_path = dir.join("model.safetensors");
        let tensors: HashMap<String, Tensor> =
            candle_core::safetensors::load(&weights_path, &device)
                .map_err(model_error("reading model.safetensors"))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = Self::from_weights(&config, vb, device)
            .map_err(model_error("model.safetensors lacks a weight"))?;
        Ok((model, config))
    }

    fn from_weights(c: &BertConfig, vb: VarBuilder, device: Device) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        let norm = |vb: VarBuilder| candle_nn::layer_norm(h, c.layer_norm_eps, vb.pp("LayerNorm"));
        let e = vb.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                Ok(Layer {
                    query: candle_nn::linear(h, h, a.pp("self.query"))?,
                    key: candle_nn::linear(h, h, a.pp("self.key"))?,
                    value: candle_nn::linear(h, h, a.pp("self.value"))?,
                    attention_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                    attention_norm: norm(a.pp("output"))?,
                    intermediate: candle_nn::linear(
                        h,
                        c.intermediate_size,
                        l.pp("intermediate.dense"),
                    )?,
                    output: candle_nn::linear(c.intermediate_size, h, l.pp("output.dense"))?,
                    output_norm: norm(l.pp("output"))?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            word: candle_nn::embedding(c.vocab_size, h, e.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                c.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            embed_norm: norm(e)?,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            device,
        })
    }

    /// Unit-length sentence vectors of a padded batch: `ids` and `mask` are
    /// `batch × len` (mask 1 for a token, 0 for padding).
    pub fn embed(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        self.forward(ids, mask, batch)
            .map_err(model_error("inference"))
    }

    fn forward(
        &self,
        ids: &[u32],
        mask: &[u32],
        batch: usize,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let len = ids.len() / batch.max(1);
        let ids = Tensor::from_slice(ids, (batch, len), &self.device)?;
        let mask: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
        let mask = Tensor::from_vec(mask, (batch, len), &self.device)?;
        let positions = Tensor::arange(0u32, len as u32, &self.device)?;
        let types = ids.zeros_like()?;

        let x = self
            .word
            .forward(&ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(&types)?)?;
        let mut x = self.embed_norm.forward(&x)?;

        // Padding gets a large negative score before the softmax: batch × 1 × 1 × len.
        let bias = ((mask.ones_like()? - &mask)? * -1e9)?.reshape((batch, 1, 1, len))?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias, batch, len)?;
        }

        // Mean over the real tokens, then unit length.
        let m = mask.unsqueeze(2)?;
        let summed = x.broadcast_mul(&m)?.sum(1)?;
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }

    fn layer(
        &self,
        l: &Layer,
        x: &Tensor,
        bias: &Tensor,
        batch: usize,
        len: usize,
    ) -> candle_core::Result<Tensor> {
        let split = |t: Tensor| {
            t.reshape((batch, len, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(l.query.forward(x)?)?;
        let k = split(l.key.forward(x)?)?;
        let v = split(l.value.forward(x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
            batch,
            len,
            self.heads * self.head_dim,
        ))?;
        let attended = l
            .attention_norm
            .forward(&(l.attention_out.forward(&context)? + x)?)?;
        let hidden = l.intermediate.forward(&attended)?.gelu_erf()?;
        l.output_norm
            .forward(&(l.output.forward(&hidden)? + &attended)?)
    }
}
