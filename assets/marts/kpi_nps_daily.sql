-- Daily Net Promoter Score with its 95% margin of error.
-- grain: one row per submission date (reporting time zone), channel and segment
with feedback as (

    select * from stg_feedback
    where survey_type = 'nps'

),

daily as (

    select
        submitted_date,
        channel,
        segment,
        count(*) as count_responses,
        count(*) filter (where nps_category = 'promoter') as count_promoters,
        count(*) filter (where nps_category = 'passive') as count_passives,
        count(*) filter (where nps_category = 'detractor') as count_detractors
    from feedback
    group by all

),

shares as (

    select
        *,
        count_promoters / count_responses as promoter_share,
        count_detractors / count_responses as detractor_share
    from daily

),

with_error as (

    -- Standard error of the NPS share difference: sqrt((p + d - (p - d)^2) / n).
    select
        *,
        sqrt(
            greatest(promoter_share + detractor_share - pow(promoter_share - detractor_share, 2), 0)
            / count_responses
        ) as share_standard_error
    from shares

)

select
    submitted_date,
    channel,
    segment,
    count_responses,
    count_promoters,
    count_passives,
    count_detractors,
    100.0 * (promoter_share - detractor_share) as nps,
    100.0 * share_standard_error as nps_standard_error,
    1.96 * 100.0 * share_standard_error as nps_margin_of_error_95
from with_error
order by submitted_date, channel, segment
