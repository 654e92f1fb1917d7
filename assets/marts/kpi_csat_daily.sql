-- Daily customer satisfaction (CSAT): the top-box share of survey answers and review ratings.
-- grain: one row per submission date (reporting time zone), channel, segment, survey type and scale
with feedback as (

    select * from stg_feedback
    where survey_type in ('csat', 'review')

),

daily as (

    select
        submitted_date,
        channel,
        segment,
        survey_type,
        scale_min,
        scale_max,
        count(*) as count_responses,
        count(*) filter (where is_satisfied) as count_satisfied,
        sum(score_aligned) as sum_score,
        sum(score_aligned * score_aligned) as sum_score_squared
    from feedback
    group by all

)

select
    *,
    100.0 * count_satisfied / count_responses as csat_pct,
    sum_score / count_responses as mean_score
from daily
order by submitted_date, channel, segment, survey_type, scale_min, scale_max
