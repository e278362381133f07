//! Inspecting and steering a queue for the admin view, beyond the workers' operations: paged
//! listings, bounded payload search, promoting one delayed job, recent outcome counts and the
//! workers seen polling.

use std::time::Duration;

use redis::AsyncCommands;

use super::{JobState, QueueError, now_ms, scripts, store::Queue};

/// What the admin view needs beyond the workers' operations: paged listings, payload search,
/// promoting one delayed job, recent outcome counts and the workers seen polling.
impl Queue {
    /// One page of ids in `state` (same order as `ids`) and how many jobs the state holds. Costs
    /// O(log n + limit) whatever the size of the state (ZRANGE by index).
    pub async fn ids_page(
        &self,
        state: JobState,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, u64), QueueError> {
        let mut redis = self.redis.clone();
        let (start, stop) = (offset as isize, (offset + limit.max(1)) as isize - 1);
        let key = self.keys.state(state);
        Ok(match state {
            JobState::Waiting => self.waiting_page(offset, limit.max(1)).await?,
            JobState::Delayed | JobState::Active | JobState::WaitingChildren => {
                redis::pipe().zrange(key, start, stop).zcard(key).query_async(&mut redis).await?
            }
            JobState::Completed | JobState::Failed | JobState::Cancelled => {
                redis::pipe().zrevrange(key, start, stop).zcard(key).query_async(&mut redis).await?
            }
        })
    }

    /// Jobs of `state` whose payload contains `needle` (case-insensitive), looking at no more than
    /// `budget` jobs from position `from` on (so one call never blocks Redis for long). Answers the
    /// matching ids (at most `limit`) and the position to continue from (`None`: the end was reached).
    pub async fn search(
        &self,
        state: JobState,
        needle: &str,
        from: usize,
        limit: usize,
        budget: usize,
    ) -> Result<(Vec<String>, Option<usize>), QueueError> {
        let search = scripts::Search {
            descending: matches!(state, JobState::Completed | JobState::Failed | JobState::Cancelled),
            waiting: state == JobState::Waiting,
            needle: &needle.to_lowercase(),
            from,
            limit,
            budget,
        };
        let page = scripts::search(&mut self.redis.clone(), &self.keys, state, &search).await?;
        Ok((page.ids, page.next))
    }

    /// Moves one delayed job to `waiting` now; false when it is not delayed (any more).
    pub async fn promote_job(&self, id: &str) -> Result<bool, QueueError> {
        Ok(scripts::promote_one(&mut self.redis.clone(), &self.keys, id, now_ms()).await?)
    }

    /// Jobs completed and failed since `since_ms` (still kept: counts stop at the retention limits).
    pub async fn finished_since(&self, since_ms: i64) -> Result<(u64, u64), QueueError> {
        Ok(redis::pipe()
            .zcount(&self.keys.completed, since_ms, "+inf")
            .zcount(&self.keys.failed, since_ms, "+inf")
            .query_async(&mut self.redis.clone())
            .await?)
    }

    /// Records that `worker` is alive and polling this queue (the admin's "workers alive").
    pub(crate) async fn beat_worker(&self, worker: &str) -> Result<(), QueueError> {
        let key = &self.keys.workers;
        let now = now_ms();
        redis::pipe()
            .zadd(key, worker, now)
            .zrembyscore(key, "-inf", now - 3_600_000)
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Workers that polled this queue within `within`, most recent first, with their last beat (unix ms).
    pub async fn workers(&self, within: Duration) -> Result<Vec<(String, i64)>, QueueError> {
        let since = now_ms() - within.as_millis() as i64;
        Ok(self.redis.clone().zrevrangebyscore_withscores(&self.keys.workers, "+inf", since).await?)
    }
}
