//! Exports: CSV and JSON Lines, oldest record first (chain order, so an export can be
//! re-verified), streamed from the database row by row.

use futures_util::{Stream, TryStreamExt};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::query::{push_filter, record_from_row, SELECT_RECORDS};
use super::{format_time, AuditError, AuditLog, ExportFormat, Filter, Record};

/// CSV columns: the stored columns in chain order (see the `audit` module docs).
const CSV_HEADER: &str = "seq,time,actor_id,actor_name,actor_role,source_ip,user_agent,action,\
     target_type,target_id,target_label,details,outcome,upstream_status,upstream_request_id,\
     intent_seq,prev_hash,hash\r\n";

/// Chunks handed to an HTTP body are about this big.
const CHUNK_BYTES: usize = 32 * 1024;

fn csv_opt_text(field: Option<&str>) -> String {
    field.map(crate::csv::text).unwrap_or_default()
}

fn csv_opt_num<T: ToString>(field: Option<T>) -> String {
    field.map(|n| n.to_string()).unwrap_or_default()
}

/// Appends one record in `format` (with its line ending) to `out`.
fn encode(record: &Record, format: ExportFormat, out: &mut Vec<u8>) -> Result<(), AuditError> {
    match format {
        ExportFormat::Csv => {
            let cells = [
                record.seq.to_string(),
                format_time(&record.time),
                csv_opt_num(record.actor_id),
                crate::csv::text(&record.actor_name),
                csv_opt_text(record.actor_role.as_deref()),
                csv_opt_text(record.source_ip.as_deref()),
                csv_opt_text(record.user_agent.as_deref()),
                crate::csv::text(&record.action),
                csv_opt_text(record.target_type.as_deref()),
                csv_opt_text(record.target_id.as_deref()),
                csv_opt_text(record.target_label.as_deref()),
                // JSON text starts with `{`, `[`, `"`, a digit, `-`, `t`, `f` or `n`: only a
                // bare negative number could look like a formula, and is neutralized too.
                crate::csv::text(&super::record::canonical_json(&record.details)),
                record.outcome.as_str().to_owned(),
                csv_opt_num(record.upstream_status),
                csv_opt_text(record.upstream_request_id.as_deref()),
                csv_opt_num(record.intent_seq),
                record.prev_hash.clone(),
                record.hash.clone(),
            ];
            out.extend_from_slice(cells.join(",").as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ExportFormat::Jsonl => {
            serde_json::to_writer(&mut *out, record).map_err(|e| AuditError::Corrupt {
                seq: record.seq,
                reason: format!("cannot serialize: {e}"),
            })?;
            out.push(b'\n');
        }
    }
    Ok(())
}

fn header(format: ExportFormat) -> &'static [u8] {
    match format {
        ExportFormat::Csv => CSV_HEADER.as_bytes(),
        ExportFormat::Jsonl => b"",
    }
}

fn export_query(filter: &Filter) -> QueryBuilder<'static, Sqlite> {
    let mut qb = QueryBuilder::<Sqlite>::new(SELECT_RECORDS);
    push_filter(&mut qb, filter);
    qb.push(" ORDER BY seq");
    qb
}

impl AuditLog {
    /// Writes every matching record to `out`, oldest first, and returns how many records were
    /// written. Rows are streamed from the database; memory use does not grow with the log.
    pub async fn export(
        &self,
        filter: &Filter,
        format: ExportFormat,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, AuditError> {
        out.write_all(header(format)).await?;
        let mut qb = export_query(filter);
        let mut rows = qb.build().fetch(&self.pool);
        let mut buf = Vec::with_capacity(CHUNK_BYTES);
        let mut written = 0;
        while let Some(row) = rows.try_next().await? {
            encode(&record_from_row(&row)?, format, &mut buf)?;
            written += 1;
            if buf.len() >= CHUNK_BYTES {
                out.write_all(&buf).await?;
                buf.clear();
            }
        }
        out.write_all(&buf).await?;
        out.flush().await?;
        Ok(written)
    }

    /// The same bytes as [`AuditLog::export`], as a stream for an HTTP download
    /// (`axum::body::Body::from_stream`): the CSV header comes first. Nothing runs until the
    /// stream is first polled; a database error mid-way ends the stream with `Err` (so the
    /// download fails visibly rather than looking complete); dropping the stream stops the
    /// query.
    pub fn export_stream(
        &self,
        filter: Filter,
        format: ExportFormat,
    ) -> impl Stream<Item = Result<Vec<u8>, AuditError>> + Send + 'static {
        enum State {
            NotStarted(SqlitePool, Filter, ExportFormat),
            Running(mpsc::Receiver<Result<Vec<u8>, AuditError>>),
        }

        let start = State::NotStarted(self.pool.clone(), filter, format);
        futures_util::stream::unfold(start, |state| async move {
            let mut rx = match state {
                State::Running(rx) => rx,
                State::NotStarted(pool, filter, format) => {
                    let (tx, rx) = mpsc::channel(4);
                    tokio::spawn(async move {
                        if let Err(error) = produce(&pool, &filter, format, &tx).await {
                            tracing::error!(%error, "audit export failed mid-stream");
                            let _ = tx.send(Err(error)).await;
                        }
                    });
                    rx
                }
            };
            rx.recv().await.map(|item| (item, State::Running(rx)))
        })
    }
}

/// Feeds `tx` with chunks; returns early (Ok) when the receiver is gone.
async fn produce(
    pool: &SqlitePool,
    filter: &Filter,
    format: ExportFormat,
    tx: &mpsc::Sender<Result<Vec<u8>, AuditError>>,
) -> Result<(), AuditError> {
    let mut buf = Vec::with_capacity(CHUNK_BYTES);
    buf.extend_from_slice(header(format));
    let mut qb = export_query(filter);
    let mut rows = qb.build().fetch(pool);
    while let Some(row) = rows.try_next().await? {
        encode(&record_from_row(&row)?, format, &mut buf)?;
        if buf.len() >= CHUNK_BYTES {
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES));
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(());
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send(Ok(buf)).await;
    }
    Ok(())
}
