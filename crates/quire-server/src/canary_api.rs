//! Continuous evaluation as a service trait: sampled production queries and canary evaluation. [`Local`] implements
//! it over the data dir's registry; `Remote` over gRPC.

use quire_release::CanaryOutcome;
use quire_release::canary::{CanaryEvalRequest, CanaryReport};
use quire_release::outcome::{AliasReport, FeedbackLabel, FeedbackReceipt};
use quire_release::sampling::{MAX_SAMPLE_LIST, SampleListing, micros};
use quire_release::{SampleQuery, SampleRecord};

use crate::api::Local;
use crate::error::Result;

/// Continuous-evaluation operations.
#[allow(async_fn_in_trait)]
pub trait CanaryApi {
    /// Sampled requests `listing` selects, oldest first.
    async fn samples(&self, listing: SampleListing) -> Result<Vec<SampleRecord>>;
    /// Replay `alias`'s sampled queries against its primary and canary (or shadow), store the
    /// report and apply the alias's auto-rollback policy.
    async fn evaluate_canary(
        &self,
        alias: &str,
        request: CanaryEvalRequest,
    ) -> Result<CanaryOutcome>;
    /// Stored canary reports of `alias`, oldest first.
    async fn canary_reports(&self, alias: &str) -> Result<Vec<CanaryReport>>;
    /// Say what became of the answer to `request_id` (sent by this caller through an alias).
    async fn feedback(
        &self,
        request_id: &str,
        success: bool,
        label: Option<FeedbackLabel>,
    ) -> Result<FeedbackReceipt>;
    /// `alias`'s arms side by side from the feedback of the last `since_secs` seconds.
    async fn alias_report(&self, alias: &str, since_secs: u64) -> Result<AliasReport>;
}

/// The registry query behind `listing` at `now_us`: an intent filter is applied to the newest
/// [`MAX_SAMPLE_LIST`] records.
fn sample_query(listing: &SampleListing, now_us: u64) -> SampleQuery {
    SampleQuery {
        alias: listing.alias.clone(),
        since_us: listing
            .since_secs
            .map_or(0, |s| now_us.saturating_sub(s.saturating_mul(1_000_000))),
        limit: if listing.intent.is_some() {
            MAX_SAMPLE_LIST
        } else {
            listing.limit
        },
    }
}

impl CanaryApi for Local {
    async fn samples(&self, listing: SampleListing) -> Result<Vec<SampleRecord>> {
        self.blocking(move |l| {
            let query = sample_query(&listing, micros(jiff::Timestamp::now()));
            Ok(listing.keep(l.store().samples(&query)?))
        })
        .await
    }

    async fn evaluate_canary(
        &self,
        alias: &str,
        request: CanaryEvalRequest,
    ) -> Result<CanaryOutcome> {
        let alias = alias.to_owned();
        self.cancellable(move |l, cancel| l.evaluate_canary_now(&alias, &request, cancel))
            .await
    }

    async fn feedback(
        &self,
        request_id: &str,
        success: bool,
        label: Option<FeedbackLabel>,
    ) -> Result<FeedbackReceipt> {
        Ok(self.take_feedback(request_id, success, label)?.into())
    }

    async fn alias_report(&self, alias: &str, since_secs: u64) -> Result<AliasReport> {
        let alias = alias.to_owned();
        self.blocking(move |l| {
            l.store().alias(&alias)?;
            let now = micros(jiff::Timestamp::now());
            let since_us = now.saturating_sub(since_secs.saturating_mul(1_000_000));
            let records = l.store().feedback(&alias, since_us)?;
            Ok(AliasReport::of(&alias, since_secs, &records))
        })
        .await
    }

    async fn canary_reports(&self, alias: &str) -> Result<Vec<CanaryReport>> {
        let alias = alias.to_owned();
        self.blocking(move |l| {
            l.store().alias(&alias)?;
            Ok(l.store().canary_reports(Some(&alias))?)
        })
        .await
    }
}
