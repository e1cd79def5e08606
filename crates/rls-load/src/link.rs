//! TCP connections to the server, each shared by many subscribers or publishers, built like
//! presence-load's: a writer task batches whatever is queued into one write, a reader task
//! frames the stream with `sip-message`'s [`StreamDecoder`] and hands every message to the
//! run, sending back the response it returns (NOTIFYs are answered at once).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sip_message::{Limits, Message, StreamDecoder, StreamItem};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What a connection reports to the run.
pub trait Handler: Send + Sync + 'static {
    /// A message from the server; the response to send back, if any.
    fn on_message(&self, message: &Message) -> Option<Bytes>;
    /// Bytes that do not frame or parse as SIP.
    fn on_garbage(&self);
    /// The server closed the connection (or it failed).
    fn on_closed(&self);
}

#[derive(Clone)]
pub struct Link {
    /// Our address, for Via and Contact, so NOTIFYs come back over this connection.
    pub local: SocketAddr,
    queue: mpsc::UnboundedSender<Bytes>,
}

impl Link {
    pub async fn open(server: SocketAddr, handler: Arc<impl Handler>) -> std::io::Result<Link> {
        let stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let (mut reader, writer) = stream.into_split();
        let queue = crate::loadgen::batched_writer(writer);
        let link = Link { local, queue };
        let replies = link.clone();
        tokio::spawn(async move {
            let mut decoder = StreamDecoder::new(Limits::default());
            'read: loop {
                match reader.read_buf(decoder.buffer_mut()).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    match decoder.next_item() {
                        Ok(Some(StreamItem::Message(data))) => {
                            match Message::parse(data, &Limits::default()) {
                                Ok(message) => {
                                    if let Some(reply) = handler.on_message(&message) {
                                        replies.send(reply);
                                    }
                                }
                                Err(_) => handler.on_garbage(),
                            }
                        }
                        Ok(Some(StreamItem::Ping)) => replies.send(Bytes::from_static(b"\r\n")),
                        Ok(Some(StreamItem::Pong)) => {}
                        Ok(None) => break,
                        // The stream cannot be re-synchronised after a framing error.
                        Err(_) => {
                            handler.on_garbage();
                            break 'read;
                        }
                    }
                }
            }
            handler.on_closed();
        });
        Ok(link)
    }

    pub fn send(&self, data: Bytes) {
        // A failed send means the writer stopped with the connection, which the reader
        // reports as closed.
        let _ = self.queue.send(data);
    }
}
