//! [`QuireApi`] over gRPC: what the CLI uses with `--server`.

use std::io::Read;
use std::path::Path;

use quire_index::{Query, Response};
use quire_proto::convert;
use quire_proto::pb;
use quire_proto::pb::index_service_client::IndexServiceClient;
use quire_proto::pb::retrieval_service_client::RetrievalServiceClient;
use quire_proto::pb::snapshot_service_client::SnapshotServiceClient;
use quire_store::{
    BuildOutcome, CorpusFormat, IndexInfo, IndexSummary, RebuildCheck, SnapshotInfo, VerifyReport,
};
use tokio::sync::{mpsc, oneshot};
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::api::{QuireApi, RequestMeta, SharedProgress};
use crate::error::{Result, ServiceError};

/// Bytes per upload message.
const UPLOAD_CHUNK: usize = 1 << 20;

/// A connection to a quire server.
#[derive(Clone, Debug)]
pub struct Remote {
    channel: Channel,
    token: Option<String>,
    user_token: Option<String>,
}

/// A response field the server got wrong: our error, not the caller's.
pub(crate) fn malformed_response(e: convert::InvalidField) -> ServiceError {
    ServiceError::Internal(format!("malformed response: {e}"))
}

impl Remote {
    /// Connect to `url` (`http://host:port`, or `https://` with `ca` the PEM file to trust).
    pub async fn connect(url: &str, token: Option<String>, ca: Option<&Path>) -> Result<Self> {
        let bad = |e: String| ServiceError::Unavailable(format!("cannot reach {url}: {e}"));
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ServiceError::InvalidArgument(format!("server URL {url:?}: {e}")))?;
        if let Some(ca) = ca {
            let pem = std::fs::read(ca)
                .map_err(|e| ServiceError::InvalidArgument(format!("{}: {e}", ca.display())))?;
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .map_err(|e| bad(e.to_string()))?;
        }
        let channel = endpoint.connect().await.map_err(|e| bad(format!("{e}")))?;
        Ok(Self {
            channel,
            token,
            user_token: None,
        })
    }

    /// The same connection, sending `jwt` (an end user's signed token) with every request in
    /// `x-quire-user-token`: queries then read as that user, if the server trusts its issuer
    /// and the bearer token may present one.
    pub fn with_user_token(mut self, jwt: Option<String>) -> Self {
        self.user_token = jwt;
        self
    }

    pub(crate) fn request<T>(&self, message: T) -> Result<Request<T>> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                ServiceError::InvalidArgument(
                    "the token contains characters not allowed in a header".into(),
                )
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(jwt) = &self.user_token {
            let value = jwt.parse().map_err(|_| {
                ServiceError::InvalidArgument(
                    "the end user's token contains characters not allowed in a header".into(),
                )
            })?;
            request
                .metadata_mut()
                .insert(crate::jwt::USER_TOKEN_HEADER, value);
        }
        Ok(request)
    }

    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    fn snapshots_client(&self) -> SnapshotServiceClient<Channel> {
        SnapshotServiceClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    fn indexes_client(&self) -> IndexServiceClient<Channel> {
        IndexServiceClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    /// What to upload for the corpus at `path`: a directory is read and validated here and
    /// sent as canonical JSONL (the snapshot id is the same either way); a file is streamed
    /// from disk as it is sent.
    fn upload_body(path: &Path, format: Option<CorpusFormat>) -> Result<(Body, CorpusFormat)> {
        let label = path.display().to_string();
        let max = quire_store::import::DEFAULT_MAX_DOCUMENT_BYTES;
        let format = match format {
            Some(f) => f,
            None => quire_store::import::detect_format(path, &label, max)?,
        };
        if format == CorpusFormat::Dir {
            let docs = quire_store::import::canonicalise(
                quire_store::import::read_corpus(path, format, &label, max)?,
                path,
            )?;
            let mut body = Vec::new();
            for doc in docs {
                body.extend(doc.canonical_json());
                body.push(b'\n');
            }
            return Ok((Body::Bytes(body), CorpusFormat::Jsonl));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| ServiceError::InvalidArgument(format!("{label}: {e}")))?;
        Ok((Body::File(file, label), format))
    }
}

/// An upload's content.
enum Body {
    /// Already in memory (a directory read as canonical JSONL).
    Bytes(Vec<u8>),
    /// A file, read chunk by chunk as the server takes them; the label names it in errors.
    File(std::fs::File, String),
}

/// Stream `header` and then `body` in [`UPLOAD_CHUNK`] pieces, reading on a blocking thread
/// at the pace the server takes them. A read error is put on the returned receiver, and then a
/// second header is sent, which the server refuses: a truncated file is never imported.
fn upload_stream(
    header: pb::ImportHeader,
    body: Body,
) -> (
    tokio_stream::wrappers::ReceiverStream<pb::ImportSnapshotRequest>,
    oneshot::Receiver<ServiceError>,
) {
    use pb::import_snapshot_request::Item;
    let (tx, rx) = mpsc::channel(4);
    let (failed_tx, failed_rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let send = |item| {
            tx.blocking_send(pb::ImportSnapshotRequest { item: Some(item) })
                .is_ok()
        };
        if !send(Item::Header(header)) {
            return;
        }
        match body {
            Body::Bytes(bytes) => {
                for chunk in bytes.chunks(UPLOAD_CHUNK) {
                    if !send(Item::Chunk(chunk.to_vec())) {
                        return;
                    }
                }
            }
            Body::File(mut file, label) => loop {
                let mut chunk = Vec::with_capacity(UPLOAD_CHUNK);
                match (&mut file)
                    .take(UPLOAD_CHUNK as u64)
                    .read_to_end(&mut chunk)
                {
                    Ok(0) => return,
                    Ok(_) => {
                        if !send(Item::Chunk(chunk)) {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ =
                            failed_tx.send(ServiceError::InvalidArgument(format!("{label}: {e}")));
                        send(Item::Header(pb::ImportHeader::default()));
                        return;
                    }
                }
            },
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), failed_rx)
}

impl QuireApi for Remote {
    async fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        let (body, format) = Self::upload_body(path, format)?;
        let header = pb::ImportHeader {
            format: convert::corpus_format_to_pb(Some(format)),
            file_name: path.display().to_string(),
            server_path: String::new(),
        };
        let (stream, mut failed) = upload_stream(header, body);
        let request = self.request(stream)?;
        let answer = self.snapshots_client().import_snapshot(request).await;
        // A local read error is the real cause of the server's refusal.
        if let Ok(error) = failed.try_recv() {
            return Err(error);
        }
        let snapshot = answer?.into_inner();
        SnapshotInfo::try_from(snapshot).map_err(malformed_response)
    }

    async fn snapshot(&self, id: &str) -> Result<SnapshotInfo> {
        let request = self.request(pb::GetSnapshotRequest {
            snapshot_id: id.to_owned(),
        })?;
        SnapshotInfo::try_from(
            self.snapshots_client()
                .get_snapshot(request)
                .await?
                .into_inner(),
        )
        .map_err(malformed_response)
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let request = self.request(pb::ListSnapshotsRequest {})?;
        let list = self
            .snapshots_client()
            .list_snapshots(request)
            .await?
            .into_inner();
        list.snapshots
            .into_iter()
            .map(|s| SnapshotInfo::try_from(s).map_err(malformed_response))
            .collect()
    }

    async fn build(
        &self,
        snapshot: &str,
        spec_toml: Option<&str>,
        progress: SharedProgress,
    ) -> Result<BuildOutcome> {
        let request = self.request(pb::BuildIndexRequest {
            snapshot_id: snapshot.to_owned(),
            spec_toml: spec_toml.unwrap_or_default().to_owned(),
        })?;
        let mut stream = self
            .indexes_client()
            .build_index(request)
            .await?
            .into_inner();
        let mut done = 0;
        while let Some(event) = stream.message().await? {
            match event.event {
                Some(pb::build_index_event::Event::Stage(s)) => {
                    done = 0;
                    progress.stage(static_stage_name(&s.name), s.total);
                }
                Some(pb::build_index_event::Event::Advance(a)) => {
                    progress.advance(a.done.saturating_sub(done));
                    done = done.max(a.done);
                }
                Some(pb::build_index_event::Event::EmbedCache(c)) => {
                    progress.embed_cache(c.hits, c.misses);
                }
                Some(pb::build_index_event::Event::Reused(r)) => {
                    if let Ok(from) = r.from_index.parse() {
                        progress.reused(static_stage_name(&r.stage), &from);
                    }
                }
                Some(pb::build_index_event::Event::Result(r)) => {
                    let manifest = r.manifest.ok_or_else(|| {
                        ServiceError::Internal("build result without a manifest".into())
                    })?;
                    let info = IndexInfo::try_from(manifest).map_err(malformed_response)?;
                    return Ok(BuildOutcome {
                        manifest: info.manifest,
                        reused: r.reused,
                        unreadable_documents: r.unreadable_documents,
                    });
                }
                Some(pb::build_index_event::Event::Queued(_)) | None => {}
            }
        }
        Err(ServiceError::Unavailable(
            "the build stream ended without a result".into(),
        ))
    }

    async fn indexes(&self) -> Result<Vec<IndexSummary>> {
        let request = self.request(pb::ListIndexesRequest {})?;
        let list = self
            .indexes_client()
            .list_indexes(request)
            .await?
            .into_inner();
        list.indexes
            .into_iter()
            .map(|i| IndexSummary::try_from(i).map_err(malformed_response))
            .collect()
    }

    async fn index(&self, target: &str) -> Result<IndexInfo> {
        let request = self.request(pb::GetIndexRequest {
            target: target.to_owned(),
        })?;
        IndexInfo::try_from(self.indexes_client().get_index(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn verify(&self, target: &str) -> Result<VerifyReport> {
        let request = self.request(pb::VerifyIndexRequest {
            target: target.to_owned(),
        })?;
        VerifyReport::try_from(
            self.indexes_client()
                .verify_index(request)
                .await?
                .into_inner(),
        )
        .map_err(malformed_response)
    }

    async fn rebuild_check(&self, target: &str, _progress: SharedProgress) -> Result<RebuildCheck> {
        let request = self.request(pb::RebuildCheckRequest {
            target: target.to_owned(),
        })?;
        RebuildCheck::try_from(
            self.indexes_client()
                .rebuild_check(request)
                .await?
                .into_inner(),
        )
        .map_err(malformed_response)
    }

    async fn retrieve_with(
        &self,
        target: &str,
        query: Query,
        meta: RequestMeta,
    ) -> Result<Response> {
        let mut message = convert::retrieve_request(target, &query, true);
        message.routing_key = meta.routing_key.unwrap_or_default();
        message.intent = meta.intent.map(String::from).unwrap_or_default();
        let request = self.request(message)?;
        let response = RetrievalServiceClient::new(self.channel.clone())
            .retrieve(request)
            .await?
            .into_inner();
        Response::try_from(response).map_err(malformed_response)
    }
}

/// Stage names are a small fixed set; map the server's to the static names the progress trait
/// takes.
fn static_stage_name(name: &str) -> &'static str {
    match name {
        "chunk" => "chunk",
        "embed" => "embed",
        "bm25" => "bm25",
        "hnsw" => "hnsw",
        "write" => "write",
        "vectors" => "vectors",
        "graph" => "graph",
        _ => "build",
    }
}
