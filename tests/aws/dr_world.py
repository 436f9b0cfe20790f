"""The DR region a region drill meets on moto: what the AWS region tests arrange alike."""

from __future__ import annotations

from typing import Any

import boto3

DR = "us-east-1"
RECORD = "api.staging.mpac-cloud.com"


def c(service: str, url: str, region: str = DR) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url)


def switch_record(moto_url: str, zid: str, to: str, ttl: int = 60) -> None:
    """UPSERT the CNAME ``RECORD`` in zone ``zid`` to ``to`` (what the team or the drill
    does to the record)."""
    c("route53", moto_url).change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": RECORD,
                        "Type": "CNAME",
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": to}],
                    },
                }
            ]
        },
    )


def dr_region(
    moto_url: str,
    tag: str,
    *,
    db_ident: str,
    param_name: str,
    param_value: str,
    primary_alb: str = "primary-alb.ap-northeast-1.elb.amazonaws.com",
    **parameter: Any,
) -> dict[str, str]:
    """In moto's DR region: a DB instance with a snapshot, the SSM parameter (SecureString,
    ``parameter``'s extra fields), an ECS cluster with the services, a hosted zone whose
    record points at the primary. Returns the cluster's name and the zone's id."""
    rds = c("rds", moto_url)
    rds.create_db_instance(
        DBInstanceIdentifier=db_ident,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="x" * 12,
        AllocatedStorage=20,
    )
    rds.create_db_snapshot(DBInstanceIdentifier=db_ident, DBSnapshotIdentifier=f"{db_ident}-snap")
    c("ssm", moto_url).put_parameter(
        Name=param_name, Value=param_value, Type="SecureString", Tier="Standard", **parameter
    )
    ecs = c("ecs", moto_url)
    cluster = f"mpac-smartpos-{tag}"
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(
        family="svc", containerDefinitions=[{"name": "app", "image": "a:1", "memory": 256}]
    )["taskDefinition"]["taskDefinitionArn"]
    for svc in ("svc-portal", "svc-smarttab"):
        ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=td, desiredCount=1)
    zid = (
        c("route53", moto_url)
        .create_hosted_zone(Name="mpac-cloud.com", CallerReference=tag)["HostedZone"]["Id"]
        .split("/")[-1]
    )
    switch_record(moto_url, zid, primary_alb, ttl=300)
    return {"cluster": cluster, "zid": zid}
