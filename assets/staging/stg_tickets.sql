-- Support tickets at their latest version, with the created day in the reporting time zone.
-- grain: one row per ticket_id
with validated as (

    select * from validated_tickets

),

latest_version as (

    -- Tickets change after they land (solves, reopens, priority changes). The latest
    -- arrival wins. Within a day, the newest updated_at wins, then the later file and row.
    select *
    from validated
    qualify row_number() over (
        partition by ticket_id
        order by _partition_date desc, updated_at desc nulls last, _source_file desc, _row_number desc
    ) = 1

)

select
    ticket_id,
    customer_id,
    coalesce(channel, 'unspecified') as channel,
    coalesce(priority, 'unspecified') as priority,
    status,
    status in ('solved', 'closed') as is_solved,
    created_at,
    cast(timezone($reporting_timezone, created_at) as date) as created_date,
    updated_at,
    solved_at,
    first_reply_at,
    agent_replies,
    reopens,
    _partition_date as arrival_date,
    _source_file as source_file,
    _row_number as source_row_number
from latest_version
order by ticket_id
