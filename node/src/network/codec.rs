//! Length-prefixed protobuf framing for the block-sync request/response protocol.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use prost::Message;
use quorate_proto::v1::{DecisionRequest, DecisionResponse};

/// Protocol name of block sync.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/quorate/sync/1");

/// Reads and writes `DecisionRequest` / `DecisionResponse` as a 4-byte big-endian length and
/// the encoded message, refusing frames over a bound.
#[derive(Clone)]
pub struct SyncCodec {
    /// Largest response accepted, bytes.
    pub max_bytes: usize,
    /// Largest request accepted, bytes (see [`max_request_bytes`]).
    pub max_request_bytes: usize,
}

/// The largest request a peer may send: height and block hash, and the hashes of at most a
/// block's worth of transactions (a compact proposal's missing ones).
pub fn max_request_bytes(block_max_txs: u32) -> usize {
    64 + block_max_txs as usize * 34
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn decode<M: Message + Default>(bytes: &[u8]) -> io::Result<M> {
    M::decode(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[async_trait::async_trait]
impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = DecisionRequest;
    type Response = DecisionResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode(&read_frame(io, self.max_request_bytes).await?)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, self.max_bytes).await?;
        // What the answer would decode to is bounded before it is decoded.
        super::wire::check_response(&frame)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        decode(&frame)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.encode_to_vec()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res.encode_to_vec()).await
    }
}
