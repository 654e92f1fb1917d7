-- Daily Customer Effort Score: the mean answer and the share of "easy" (agreeing) answers.
-- grain: one row per submission date (reporting time zone), channel, segment and scale
with feedback as (

    select * from stg_feedback
    where survey_type = 'ces'

),

daily as (

    select
        submitted_date,
        channel,
        segment,
        scale_min,
        scale_max,
        count(*) as count_responses,
        count(*) filter (where is_easy) as count_easy,
        sum(score_aligned) as sum_score,
        sum(score_aligned * score_aligned) as sum_score_squared
    from feedback
    group by all

)

select
    *,
    sum_score / count_responses as ces_mean,
    100.0 * count_easy / count_responses as easy_pct
from daily
order by submitted_date, channel, segment, scale_min, scale_max
