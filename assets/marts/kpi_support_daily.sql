-- Daily support KPIs: tickets created and solved, first-contact resolution and first reply time.
-- grain: one row per created date (reporting time zone), channel and priority
with tickets as (

    select * from ticket_metrics

),

daily as (

    select
        created_date,
        channel,
        priority,
        count(*) as tickets_created,
        count(*) filter (where is_solved) as tickets_solved,
        count(*) filter (where reopens > 0) as tickets_reopened,
        count(*) filter (where touch_class = 'one_touch') as count_one_touch,
        count(*) filter (where touch_class = 'two_touch') as count_two_touch,
        count(*) filter (where touch_class = 'multi_touch') as count_multi_touch,
        -- is_fcr and is_fcr_strict are null for tickets outside their denominator.
        count(*) filter (where is_fcr) as count_fcr,
        count(is_fcr) as count_fcr_eligible,
        count(*) filter (where is_fcr_strict) as count_fcr_strict,
        count(is_fcr_strict) as count_fcr_strict_eligible,
        count(first_reply_minutes) as count_first_reply,
        coalesce(sum(first_reply_minutes), 0) as sum_first_reply_minutes,
        coalesce(sum(first_reply_business_minutes), 0) as sum_first_reply_business_minutes,
        -- Medians and 90th percentiles describe this row only and do not re-aggregate.
        median(first_reply_minutes) as first_reply_minutes_median,
        quantile_cont(first_reply_minutes, 0.9) as first_reply_minutes_p90,
        median(first_reply_business_minutes) as first_reply_business_minutes_median,
        quantile_cont(first_reply_business_minutes, 0.9) as first_reply_business_minutes_p90,
        count(final_resolution_minutes) as count_final_resolution,
        coalesce(sum(final_resolution_minutes), 0) as sum_final_resolution_minutes,
        coalesce(sum(final_resolution_business_minutes), 0) as sum_final_resolution_business_minutes
    from tickets
    group by all

)

select
    created_date,
    channel,
    priority,
    tickets_created,
    tickets_solved,
    tickets_reopened,
    count_one_touch,
    count_two_touch,
    count_multi_touch,
    count_fcr,
    count_fcr_eligible,
    100.0 * count_fcr / nullif(count_fcr_eligible, 0) as fcr_pct,
    count_fcr_strict,
    count_fcr_strict_eligible,
    100.0 * count_fcr_strict / nullif(count_fcr_strict_eligible, 0) as fcr_strict_pct,
    count_first_reply,
    sum_first_reply_minutes,
    sum_first_reply_business_minutes,
    sum_first_reply_minutes / nullif(count_first_reply, 0) as first_reply_minutes_mean,
    first_reply_minutes_median,
    first_reply_minutes_p90,
    sum_first_reply_business_minutes / nullif(count_first_reply, 0) as first_reply_business_minutes_mean,
    first_reply_business_minutes_median,
    first_reply_business_minutes_p90,
    count_final_resolution,
    sum_final_resolution_minutes,
    sum_final_resolution_business_minutes,
    sum_final_resolution_minutes / nullif(count_final_resolution, 0) as final_resolution_minutes_mean,
    sum_final_resolution_business_minutes / nullif(count_final_resolution, 0)
        as final_resolution_business_minutes_mean
from daily
order by created_date, channel, priority
