//! Server-sent events, read incrementally: bytes in, each event's `data` out.
//!
//! Only what chat providers send is handled: `data:` lines (joined with
//! newlines when an event has several), comments and other fields ignored,
//! an empty line ends an event, CRLF or LF line ends. Hand-written rather than
//! a crate: it is thirty lines and the providers need only `data`
//! (docs/decisions.md, "Chat models").

/// An SSE reader.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Adds `bytes`; returns the `data` of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    events.push(data);
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                }
            }
        }
        events
    }

    /// The data of an event the stream ended without an empty line after.
    pub fn finish(&mut self) -> Option<String> {
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let text = b": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        for split in 0..text.len() {
            let mut d = SseDecoder::default();
            let mut got = d.push(&text[..split]);
            got.extend(d.push(&text[split..]));
            assert_eq!(got, ["{\"a\":1}", "one\ntwo", "[DONE]"], "split at {split}");
        }
    }
}
