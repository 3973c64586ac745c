//! Continuous evaluation as a service trait: sampled production queries. [`Local`] implements
//! it over the data dir's registry; `Remote` over gRPC.

use quire_release::sampling::{MAX_SAMPLE_LIST, SampleListing, micros};
use quire_release::{SampleQuery, SampleRecord};

use crate::api::Local;
use crate::error::Result;

/// Continuous-evaluation operations.
#[allow(async_fn_in_trait)]
pub trait CanaryApi {
    /// Sampled requests `listing` selects, oldest first.
    async fn samples(&self, listing: SampleListing) -> Result<Vec<SampleRecord>>;
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
}
