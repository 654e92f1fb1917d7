-- Survey answers and review ratings at their latest version, with the flags every survey KPI counts.
-- grain: one row per response_id
with validated as (

    select * from validated_feedback

),

latest_version as (

    -- A later arrival replaces an earlier one; within a day, the later file and row win.
    select *
    from validated
    qualify row_number() over (
        partition by response_id
        order by _partition_date desc, _source_file desc, _row_number desc
    ) = 1

),

aligned as (

    select
        response_id,
        customer_id,
        submitted_at,
        cast(timezone($reporting_timezone, submitted_at) as date) as submitted_date,
        survey_type,
        score,
        scale_min,
        scale_max,
        scale_direction,
        -- Reversed scales (1 = best) are turned around so a higher score is always better.
        case
            when scale_direction = 'lower_is_better' then scale_min + scale_max - score
            else score
        end as score_aligned,
        scale_max - scale_min + 1 as scale_points,
        comment,
        coalesce(channel, 'unspecified') as channel,
        coalesce(segment, 'unspecified') as segment,
        _partition_date as arrival_date,
        _source_file as source_file,
        _row_number as source_row_number
    from latest_version

),

flagged as (

    select
        *,
        case
            when survey_type in ('csat', 'review')
                then score_aligned > scale_max - (case when scale_points <= 3 then 1 else $csat_top_box end)
        end as is_satisfied,
        case
            when survey_type = 'nps' and score >= 9 then 'promoter'
            when survey_type = 'nps' and score >= 7 then 'passive'
            when survey_type = 'nps' then 'detractor'
        end as nps_category,
        case
            when survey_type = 'ces'
                then score_aligned > scale_max - (
                    case when scale_points = 7 then $ces_top_box_7_point else $ces_top_box end
                )
        end as is_easy
    from aligned

)

select * from flagged
order by response_id
