output "db_endpoint" {
  description = "Writer endpoint of the orders database"
  value       = aws_db_instance.orders.address
}

output "db_master_secret_arn" {
  description = "Secrets Manager ARN of the RDS-managed master password"
  value       = aws_db_instance.orders.master_user_secret[0].secret_arn
}
