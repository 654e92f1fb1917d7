-- Web or app visits at their latest version.
-- grain: one row per session_id
with validated as (

    select * from validated_sessions

),

latest_version as (

    select *
    from validated
    qualify row_number() over (
        partition by session_id
        order by _partition_date desc, _source_file desc, _row_number desc
    ) = 1

)

select
    session_id,
    customer_id,
    started_at,
    converted,
    coalesce(channel, 'unspecified') as channel,
    _partition_date as arrival_date
from latest_version
order by session_id
