//! Tensors of a `model.safetensors` file, read as little-endian `f32`.

use safetensors::{Dtype, SafeTensors};

/// The tensors of one safetensors file, with the name prefix the file uses (`""` or `"bert."`).
pub(crate) struct Weights<'a> {
    tensors: SafeTensors<'a>,
    prefix: &'static str,
}

impl<'a> Weights<'a> {
    /// Parse the file's header; tensors are decoded on [`get`](Self::get).
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| format!("model.safetensors: {e}"))?;
        // Checkpoints saved from a task model nest the encoder under `bert.`.
        let prefix = if tensors.names().iter().any(|n| n.starts_with("bert.")) {
            "bert."
        } else {
            ""
        };
        Ok(Self { tensors, prefix })
    }

    /// The tensor `name`, which must be `f32` of exactly `shape`.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let view = self
            .tensors
            .tensor(&full)
            .map_err(|_| format!("model.safetensors has no tensor `{full}`"))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "model.safetensors: tensor `{full}` is {:?}; only F32 weights are supported",
                view.dtype()
            ));
        }
        if view.shape() != shape {
            return Err(format!(
                "model.safetensors: tensor `{full}` has shape {:?}, config.json implies {shape:?}",
                view.shape()
            ));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}
