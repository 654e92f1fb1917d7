-- Daily sentiment of feedback texts: items per VADER label, net sentiment and mean compound score, each with its numerators.
-- grain: one row per submission date (reporting time zone), channel and source (survey_comment, review, support_message)
with items as (

    select * from feedback_sentiment

),

daily as (

    select
        submitted_date,
        channel,
        source,
        count(*) as count_items,
        count(compound) as count_scored,
        count(*) filter (where sentiment_label = 'positive') as count_positive,
        count(*) filter (where sentiment_label = 'neutral') as count_neutral,
        count(*) filter (where sentiment_label = 'negative') as count_negative,
        coalesce(sum(compound), 0) as sum_compound,
        coalesce(sum(compound * compound), 0) as sum_compound_squared
    from items
    group by all

)

-- Items without text count in count_items only. Rates are null on a day without scored text.
select
    *,
    case
        when count_scored > 0 then 100.0 * (count_positive - count_negative) / count_scored
    end as net_sentiment,
    case when count_scored > 0 then 100.0 * count_positive / count_scored end as positive_pct,
    case when count_scored > 0 then 100.0 * count_negative / count_scored end as negative_pct,
    case when count_scored > 0 then sum_compound / count_scored end as mean_compound
from daily
order by submitted_date, channel, source
