resource "aws_cloudwatch_metric_alarm" "db_cpu_high" {
  alarm_name          = "orders-prod-db-cpu-high"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [aws_sns_topic.oncall.arn]

  dimensions = {
    DBInstanceIdentifier = aws_db_instance.orders.identifier
  }
}

resource "aws_cloudwatch_metric_alarm" "db_free_storage_low" {
  alarm_name          = "orders-prod-db-free-storage-low"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 50 * 1024 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  alarm_actions       = [aws_sns_topic.oncall.arn]

  dimensions = {
    DBInstanceIdentifier = aws_db_instance.orders.identifier
  }
}
