-- The click-through rate of a (profile, day), kept with the counts it comes from (SPEC section 7:
-- "a profile table keeps ... impressions, clicks, CTR"). Generated, so it can never disagree with
-- them; 4 decimals, 0 when there were no impressions.
ALTER TABLE rollup_profile_daily
    ADD COLUMN ctr numeric GENERATED ALWAYS AS
        (CASE WHEN impressions > 0 THEN round(clicks::numeric / impressions, 4) ELSE 0 END) STORED;
